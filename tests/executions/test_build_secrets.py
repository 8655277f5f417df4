"""A secret build-time variable reaches the build as a build secret: a RUN step reads it from
/run/secrets/NAME, and the pushed image (its config, history and every layer) never holds it.
Issue 10, part 3: it used to be a build arg, readable in the history as `|1 SECRET_ONE=...`."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile

import pytest
import requests

from executions.status import ExecutionStatus as S
from tests.executions import log_text, make_git_workflow, run_now
from tests.realparts import sample_app_files
from workflows.models import CIVariable

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

SECRET = "bld-s3cret/value+9f2c&x"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


def pushed_image(registry: str, repository: str, reference: str) -> tuple[bytes, list[bytes]]:
    """(config blob, uncompressed layer tars) of an image as the registry serves it."""
    base = f"http://{registry}/v2/{repository}"
    manifest = requests.get(
        f"{base}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}, timeout=10
    )
    manifest.raise_for_status()
    body = manifest.json()
    config = requests.get(f"{base}/blobs/{body['config']['digest']}", timeout=10).content
    layers = []
    for layer in body["layers"]:
        blob = requests.get(f"{base}/blobs/{layer['digest']}", timeout=30).content
        layers.append(gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob)
    return config, layers


def test_secret_build_variable_is_a_build_secret_not_in_the_image(
    engine, project, registry, git_server
):
    dockerfile = (
        "FROM localhost/busybox:latest\n"
        "ARG SECRET_ONE\n"
        "COPY . /ctx\n"
        # The value's digest, not the value: the log masks the value itself.
        "RUN --mount=type=secret,id=SECRET_ONE "
        'echo "secret digest $(sha256sum < /run/secrets/SECRET_ONE)"\n'
        'RUN echo "build arg is [$SECRET_ONE]"; ls -a /ctx; ls /run/secrets 2>&1 || true\n'
    )
    workflow, sha = make_git_workflow(
        project, git_server, sample_app_files(extra={"Dockerfile": dockerfile}), registry=registry
    )
    CIVariable.objects.create(
        workflow=workflow, key="SECRET_ONE", secret_value=SECRET, is_secret=True, scope="build"
    )
    CIVariable.objects.create(workflow=workflow, key="PLAIN_ONE", value="plain", scope="build")

    execution = run_now(workflow)

    assert execution.status == S.SUCCEEDED, execution.status_reason
    log = log_text(execution)
    # A RUN step could read it...
    assert f"secret digest {hashlib.sha256(SECRET.encode()).hexdigest()}" in log, log
    # ... but it is no build arg, and the context copied into the image holds no secret file.
    assert "build arg is []" in log
    assert ".workflows-secret" not in log

    config, layers = pushed_image(registry.url, workflow.repository, sha)
    history = json.loads(config)["history"]
    assert any("--mount=type=secret,id=SECRET_ONE" in h.get("created_by", "") for h in history)
    forms = [SECRET.encode(), base64.b64encode(SECRET.encode())]
    for blob in [config, *layers]:
        assert not any(form in blob for form in forms)
    for layer in layers:
        with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
            names = tar.getnames()
        assert not any("workflows-secret" in name for name in names), names
