"""Build options that really apply (issue 17): caching on hits the cache on the next run of the
same workflow; caching off neither reads nor keeps a cache; linux/arm64 builds on amd64 (QEMU)."""

from __future__ import annotations

import contextlib

import docker
import pytest
import requests

from executions.status import ExecutionStatus as S
from integrations.podman.layercache import cache_tag
from tests.executions import log_text, make_git_workflow, run_now, stage
from tests.realparts import sample_app_files, unique_name
from workflows.models import Workflow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


@pytest.fixture(autouse=True)
def remove_kept_builds(docker_client):
    """The engine is shared: the builds a test's workflows kept as their layer cache go after."""
    yield
    for workflow in Workflow.objects.all():
        for platform in ("", *workflow.platforms):
            with contextlib.suppress(docker.errors.APIError):
                docker_client.api.remove_image(cache_tag(workflow, platform))


def cached_workflow(project, registry, git_server, cache: bool):
    marker = unique_name("cache")
    files = sample_app_files(
        extra={
            "Dockerfile": (
                "FROM localhost/busybox:latest\n"
                f'RUN echo "slow dependency step {marker}" > /deps\n'
                "COPY index.html /www/index.html\n"
            )
        }
    )
    workflow, _ = make_git_workflow(project, git_server, files, registry, cache_enabled=cache)
    return workflow


def build_log(execution) -> str:
    build = stage(execution, "build")
    return "".join(build.log_chunks.order_by("seq").values_list("text", flat=True))


def test_the_second_run_of_a_workflow_hits_the_layer_cache(engine, project, registry, git_server):
    workflow = cached_workflow(project, registry, git_server, cache=True)
    first = run_now(workflow)
    assert first.status == S.SUCCEEDED, first.status_reason
    assert "Using cache" not in build_log(first), log_text(first)
    second = run_now(workflow)
    assert second.status == S.SUCCEEDED, second.status_reason
    # The RUN step and the COPY both come from the cache the first run left behind.
    assert build_log(second).count("Using cache") >= 2, build_log(second)


def test_caching_off_never_uses_a_cache(engine, project, registry, git_server):
    workflow = cached_workflow(project, registry, git_server, cache=False)
    for _ in range(2):
        execution = run_now(workflow)
        assert execution.status == S.SUCCEEDED, execution.status_reason
        assert "Using cache" not in build_log(execution)


def pushed_architecture(host: str, repository: str, tag: str, entry: str = "") -> str:
    """The architecture the pushed image's config blob declares (registry API, no engine);
    with `entry`, of that architecture's image in the manifest list under `tag`."""
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    if entry:
        index = requests.get(
            f"http://{host}/v2/{repository}/manifests/{tag}",
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
            timeout=10,
        ).json()
        tag = next(
            m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == entry
        )
    manifest = requests.get(
        f"http://{host}/v2/{repository}/manifests/{tag}", headers={"Accept": accept}, timeout=10
    ).json()
    config = requests.get(
        f"http://{host}/v2/{repository}/blobs/{manifest['config']['digest']}", timeout=10
    ).json()
    return config["architecture"]


def test_an_arm64_build_on_amd64_pushes_an_arm64_image(engine, project, registry, git_server):
    files = sample_app_files(
        extra={"Dockerfile": "FROM localhost/busybox-multi:latest\nRUN uname -m > /arch\n"}
    )
    workflow, sha = make_git_workflow(project, git_server, files, registry, platform="linux/arm64")
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert pushed_architecture(registry.url, workflow.repository, sha) == "arm64"


def pushed_index(host: str, repository: str, tag: str) -> tuple[str, list[str]]:
    """(digest, architectures) of the manifest list the registry serves under `tag`."""
    accept = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"
    response = requests.get(
        f"http://{host}/v2/{repository}/manifests/{tag}", headers={"Accept": accept}, timeout=10
    )
    response.raise_for_status()
    index = response.json()
    assert "manifests" in index, index
    architectures = sorted(m["platform"]["architecture"] for m in index["manifests"])
    return response.headers["Docker-Content-Digest"], architectures


def test_a_multi_arch_build_pushes_one_manifest_list(engine, project, registry, git_server):
    files = sample_app_files(
        extra={"Dockerfile": "FROM localhost/busybox-multi:latest\nRUN uname -m > /arch\n"}
    )
    workflow, sha = make_git_workflow(
        project,
        git_server,
        files,
        registry,
        platform="linux/amd64,linux/arm64",
        tag_template="multi-{short_sha}",
    )
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    digest, architectures = pushed_index(registry.url, workflow.repository, sha)
    assert architectures == ["amd64", "arm64"]
    # The run's digest is the index's, and the second tag names the same list.
    assert execution.image_digest == digest
    assert pushed_index(registry.url, workflow.repository, f"multi-{sha[:12]}")[0] == digest
    assert "Building Dockerfile for linux/arm64" in log_text(execution)
    # Each entry is that platform's image: its config blob says so, not only the index.
    for architecture in architectures:
        assert pushed_architecture(registry.url, workflow.repository, sha, architecture) == (
            architecture
        )
    assert stage(execution, "push").output["image_architectures"] == ["amd64", "arm64"]


def test_the_local_target_refuses_the_arm64_image_this_run_built(
    engine, project, registry, git_server
):
    from tests import base

    base.make_environments(project, names=("dev",))
    files = sample_app_files(
        extra={"Dockerfile": "FROM localhost/busybox-multi:latest\nRUN uname -m > /arch\n"}
    )
    ci, _ = make_git_workflow(project, git_server, files, registry)
    workflow = base.save_document(
        ci.service,
        {
            "name": "deliver",
            "pipeline_type": "app_cd",
            "source": {"kind": "git", "trigger": "manual"},
            "build": {"platform": "linux/arm64"},
            "push": {"registry": registry.name, "repository": ci.repository},
            "deploy": {"port": 8080, "environments": [{"environment": "dev"}]},
        },
    )
    execution = run_now(workflow)
    assert execution.status == S.FAILED
    # The architectures come from this run's push, not from a registry lookup.
    assert stage(execution, "push").output["image_architectures"] == ["arm64"]
    assert "Architecture not checked" not in log_text(execution)
    assert execution.status_reason.startswith(
        f"Deploy dev: image {execution.image} is built for arm64, but dev runs amd64 "
    ), execution.status_reason
