"""A run end to end on real parts: clone over HTTP with credentials, build on podman, push to
the open and to the authenticated registry, pull the result back; logs in order and masked;
scripts around the build; a re-run; a deploy-only workflow pinned to a digest."""

from __future__ import annotations

import re
import time

import pytest
import requests

from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from tests import base
from tests.executions import leftovers, log_text, make_git_workflow, run_now, stage
from tests.realparts import run_git, sample_app_files, unique_name
from workflows.models import CIVariable, Service, Workflow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

SECRET = "s3cr3t-npm-token-9f2c"


@pytest.fixture
def auth_registry(project, engine):
    return base.make_registry(
        project,
        name="auth",
        url=engine["ATMOSLY_TEST_AUTH_REGISTRY"],
        username=engine["ATMOSLY_TEST_AUTH_REGISTRY_USER"],
        password=engine["ATMOSLY_TEST_AUTH_REGISTRY_PASSWORD"],
    )


def registry_tags(host: str, repository: str, auth=None) -> list[str]:
    response = requests.get(f"http://{host}/v2/{repository}/tags/list", auth=auth, timeout=10)
    response.raise_for_status()
    return response.json()["tags"]


def pulled_revision(docker_client, image: str, digest: str, auth=None) -> str:
    """Pulls image@digest from its registry and reads the revision label the build set."""
    repo = image.rsplit(":", 1)[0]
    for chunk in docker_client.api.pull(
        repo, tag=digest, stream=True, decode=True, auth_config=auth
    ):
        assert "error" not in chunk, chunk
    try:
        labels = docker_client.api.inspect_image(f"{repo}@{digest}")["Config"]["Labels"]
    finally:
        docker_client.api.remove_image(f"{repo}@{digest}", noprune=True)
    return labels["org.opencontainers.image.revision"]


def test_clone_build_push_to_open_registry(engine, project, registry, git_server, docker_client):
    marker = unique_name("e2e")
    files = sample_app_files(
        extra={
            "Dockerfile": (
                "FROM localhost/busybox:latest\n"
                f'RUN echo "first step {marker}"\n'
                # A secret build-time variable is a build secret (never a build arg).
                'RUN --mount=type=secret,id=NPM_TOKEN echo "token is $(cat /run/secrets/NPM_TOKEN)"\n'
                f'RUN echo "last step {marker}"\n'
                "COPY index.html /www/index.html\n"
            )
        }
    )
    workflow, sha = make_git_workflow(
        project,
        git_server,
        files,
        registry=registry,
        tag_template="{branch}-{short_sha}-{number}",
        scripts={
            "pre_build": "echo pre-build in $(pwd) for $WORKFLOWS_COMMIT_SHA; ls /workspace",
            "post_build": "echo post-build sees $(cat /www/index.html | grep -c marker) marker",
            "post_push": "echo pushed $WORKFLOWS_IMAGE as run $WORKFLOWS_EXECUTION_NUMBER",
            "post_deploy": "",
        },
    )
    CIVariable.objects.create(
        workflow=workflow, key="NPM_TOKEN", secret_value=SECRET, is_secret=True, scope="build"
    )
    started = time.time()
    execution = run_now(workflow)

    assert execution.status == S.SUCCEEDED, execution.status_reason
    kinds = list(execution.stages.values_list("kind", "status"))
    assert kinds == [
        ("source", StageStatus.SUCCEEDED),
        ("script", StageStatus.SUCCEEDED),
        ("build", StageStatus.SUCCEEDED),
        ("script", StageStatus.SUCCEEDED),
        ("push", StageStatus.SUCCEEDED),
        ("script", StageStatus.SUCCEEDED),
    ]
    repository = workflow.repository
    assert execution.commit_sha == sha
    assert execution.commit_message == "init"
    assert execution.image == f"{registry.url}/{repository}:{sha}"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", execution.image_digest)
    tags = registry_tags(registry.url, repository)
    assert sha in tags
    assert f"main-{sha[:12]}-{execution.number}" in tags
    assert pulled_revision(docker_client, execution.image, execution.image_digest) == sha
    # The run's local build tag served its scripts and push, and went with the run.
    local_tag = stage(execution, "build").output["local_tag"]
    assert docker_client.api.images(name=local_tag) == []

    log = log_text(execution)
    # Ordered: the clone, the pre-build script, the RUN steps in order, the push, post-push.
    order = [
        "$ git clone",
        f"Checked out {sha[:12]}: init",
        f"pre-build in /workspace for {sha}",
        "Dockerfile",
        f"first step {marker}",
        "token is ***",
        f"last step {marker}",
        "post-build sees 1 marker",
        f"Pushing {registry.url}/{repository}:{sha}",
        f"pushed {execution.image} as run {execution.number}",
    ]
    positions = [log.find(text) for text in order]
    assert all(p >= 0 for p in positions), list(zip(order, positions, strict=True))
    assert positions == sorted(positions)
    assert SECRET not in log
    assert git_server.password not in log
    assert leftovers(execution, started, marker) == {"containers": [], "steps": []}


def test_push_to_registry_with_credentials_and_rerun(
    engine, project, auth_registry, git_server, docker_client
):
    workflow, sha = make_git_workflow(
        project, git_server, sample_app_files(run_steps=1), registry=auth_registry
    )
    first = run_now(workflow)
    assert first.status == S.SUCCEEDED, first.status_reason
    creds = (auth_registry.username, auth_registry.password)
    assert sha in registry_tags(auth_registry.url, workflow.repository, auth=creds)
    auth = {"username": auth_registry.username, "password": auth_registry.password}
    assert pulled_revision(docker_client, first.image, first.image_digest, auth) == sha
    assert auth_registry.password not in log_text(first)

    # Re-run safe: the same commit again, same tags pushed again, nothing refused.
    second = run_now(workflow)
    assert second.status == S.SUCCEEDED, second.status_reason
    assert second.commit_sha == sha
    assert second.image == first.image
    assert stage(second, "push").output["image_digest"] == second.image_digest


def test_run_of_a_commit_sha_and_of_a_tag(engine, project, registry, git_server):
    workflow, first_sha = make_git_workflow(
        project, git_server, sample_app_files(run_steps=1), registry=registry
    )
    name = workflow.service.name
    run_git("--git-dir", str(git_server.bare_path(name)), "tag", "v1.0", first_sha)
    second_sha = git_server.commit(name, {"index.html": "<p>second</p>\n"}, message="second")

    by_sha = run_now(workflow, ref=first_sha)
    assert by_sha.status == S.SUCCEEDED, by_sha.status_reason
    assert (by_sha.commit_sha, by_sha.branch) == (first_sha, "")
    assert by_sha.image.endswith(f":{first_sha}")

    by_tag = run_now(workflow, ref="v1.0")
    assert by_tag.status == S.SUCCEEDED, by_tag.status_reason
    assert by_tag.commit_sha == first_sha

    by_branch = run_now(workflow)
    assert (by_branch.commit_sha, by_branch.commit_message) == (second_sha, "second")


def test_deploy_only_workflow_resolves_the_digest(engine, project, auth_registry, docker_client):
    host = auth_registry.url
    repo = f"{host}/workflows-tests/{unique_name('prebuilt')}"
    auth = {"username": auth_registry.username, "password": auth_registry.password}
    docker_client.api.tag("localhost/busybox:latest", repo, "v1")
    pushed = ""
    try:
        for chunk in docker_client.api.push(
            repo, tag="v1", stream=True, decode=True, auth_config=auth
        ):
            assert "error" not in chunk, chunk
            found = re.search(r"sha256:[0-9a-f]{64}", chunk.get("status", ""))
            pushed = found.group(0) if found else pushed
    finally:
        docker_client.api.remove_image(f"{repo}:v1", noprune=True)
    service = base.make_service(
        project, name=unique_name("prebuilt"), repo_url="", image=f"{repo}:v1"
    )
    Service.objects.filter(pk=service.pk).update(image_registry=auth_registry)
    workflow = Workflow.objects.get(service=service)
    assert workflow.source_kind == "image"

    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert execution.image == f"{repo}:v1"
    assert execution.image_digest == pushed

    # A tag the registry does not have fails the run, saying so.
    Workflow.objects.filter(pk=workflow.pk).update(source_image=f"{repo}:nope")
    workflow.refresh_from_db()
    missing = run_now(workflow)
    assert missing.status == S.FAILED
    assert missing.status_reason == f"Source: image {repo}:nope not found in its registry"
