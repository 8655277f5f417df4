"""The registry layer cache (issue 17): with caching on, the Build stage reads and writes a cache
repository (`<repository>-cache`) in the workflow's registry, so a run on an engine that holds
none of the workflow's layers still hits the cache; caching off writes nothing there; a cache
repository the build cannot write does not fail the build."""

from __future__ import annotations

import contextlib
import time

import docker
import pytest
import requests

from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from integrations.podman.layercache import cache_tag
from tests import base
from tests.executions import log_text, make_git_workflow, run_now, stage
from tests.realparts import sample_app_files, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


@pytest.fixture
def auth_registry(project, engine):
    return base.make_registry(
        project,
        name="auth",
        url=engine["ATMOSLY_TEST_AUTH_REGISTRY"],
        username=engine["ATMOSLY_TEST_AUTH_REGISTRY_USER"],
        password=engine["ATMOSLY_TEST_AUTH_REGISTRY_PASSWORD"],
    )


def cache_tags(registry, repository: str) -> list[str]:
    """The tags of the workflow's cache repository, read through the registry API; [] when
    the registry has no such repository."""
    response = requests.get(
        f"http://{registry.url}/v2/{repository}-cache/tags/list",
        auth=(registry.username, registry.password),
        timeout=10,
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return response.json().get("tags") or []


def images(docker_client, **filters) -> list:
    """The engine's images, asked again when podman answers 500 because an image went away
    while it listed (other jobs remove images on the same engine)."""
    for attempt in range(5):
        try:
            return docker_client.images.list(**filters)
        except docker.errors.APIError as exc:
            if "image not known" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.5)
    return []


def build_log(execution) -> str:
    build = stage(execution, "build")
    return "".join(build.log_chunks.order_by("seq").values_list("text", flat=True))


@pytest.fixture
def cached_workflow(project, auth_registry, git_server, docker_client):
    """A workflow whose Dockerfile's RUN step no other build has, pushing to the htpasswd
    registry; its kept layer cache is removed afterwards."""
    marker = unique_name("regcache")
    files = sample_app_files(
        extra={
            "Dockerfile": (
                "FROM localhost/busybox:latest\n"
                f'RUN echo "slow dependency step {marker}" > /deps\n'
                "COPY index.html /www/index.html\n"
            )
        }
    )
    created = []

    def make(cache: bool):
        workflow, _ = make_git_workflow(
            project, git_server, files, auth_registry, cache_enabled=cache
        )
        created.append(workflow)
        return workflow

    yield make
    for workflow in created:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.api.remove_image(cache_tag(workflow))


def test_an_empty_engine_store_hits_the_registry_cache(
    cached_workflow, auth_registry, docker_client
):
    workflow = cached_workflow(cache=True)
    first = run_now(workflow)
    assert first.status == S.SUCCEEDED, log_text(first)
    assert "Pushing cache" in build_log(first), build_log(first)
    assert len(cache_tags(auth_registry, workflow.repository)) >= 2  # the RUN and COPY steps
    # The registry's password reached the engine, never the log.
    assert auth_registry.password not in log_text(first)

    # Empty the engine of this workflow's layers: its kept build and, with it, the chain of
    # intermediate images (the run's own tag went when the run ended).
    docker_client.api.remove_image(cache_tag(workflow))
    revision = f"org.opencontainers.image.revision={first.commit_sha}"
    assert not images(docker_client, filters={"label": revision})

    second = run_now(workflow)
    assert second.status == S.SUCCEEDED, log_text(second)
    log = build_log(second)
    # Only the registry can answer these: the engine had none of the workflow's layers.
    cache = f"{auth_registry.url}/{workflow.repository}-cache"
    assert log.count(f"Cache pulled from remote {cache}:") >= 2, log
    assert log.count("Using cache") >= 2, log
    # The engine keeps the pulled layers, not the cache repository's names for them.
    assert not images(docker_client, name=cache)


def test_caching_off_writes_nothing_to_the_cache_repository(cached_workflow, auth_registry):
    workflow = cached_workflow(cache=False)
    for _ in range(2):
        execution = run_now(workflow)
        assert execution.status == S.SUCCEEDED, log_text(execution)
        log = build_log(execution)
        assert "Using cache" not in log and "Pushing cache" not in log, log
        assert "Layer cache" not in log, log
    assert cache_tags(auth_registry, workflow.repository) == []


def test_a_cache_repository_the_build_cannot_write_does_not_fail_the_build(
    cached_workflow, auth_registry
):
    auth_registry.password = "not-the-password"  # the registry refuses the cache push
    auth_registry.save()
    workflow = cached_workflow(cache=True)
    execution = run_now(workflow)
    build = stage(execution, "build")
    assert build.status == StageStatus.SUCCEEDED, log_text(execution)
    assert "Registry layer cache not used" in build_log(execution)
    # The push is what fails, with the registry's word for it.
    assert execution.status == S.FAILED
    assert stage(execution, "push").status == StageStatus.FAILED
