"""Helpers for the execution tests that drive real parts (podman engine, registries, git over
HTTP): a service and workflow on the test git server, a run through the worker's task
function, the run's log, and the checks that nothing of a run is left in the engine."""

from __future__ import annotations

import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

from django.db import close_old_connections, connections

if TYPE_CHECKING:
    from integrations.kubernetes.builder import BuildPod


def make_git_workflow(project, git_server, files: dict, registry=None, **fields: Any):
    """A service whose repository holds `files` on main, and its CI workflow; returns
    (workflow, sha of main)."""
    from tests import base
    from tests.realparts import unique_name
    from workflows.models import PipelineType

    name = unique_name("app")
    sha = git_server.create_repo(name, files)
    service = base.make_service(
        project,
        name=name,
        repo_url=git_server.repo_url(name),
        git_username=git_server.user,
        git_token=git_server.password,
    )
    workflow = service.workflows.get()
    workflow.pipeline_type = PipelineType.CI
    workflow.registry = registry
    workflow.repository = f"workflows-tests/{name}"
    for field, value in fields.items():
        setattr(workflow, field, value)
    workflow.save()
    return workflow, sha


def start_run(workflow, ref: str = "main", ref_kind: str = ""):
    """A Pending run, not yet picked up (the tests play the worker). `ref_kind` as the user
    named it (RefKind); default: a bare ref, a branch or tag the repository decides."""
    from executions.models import RefKind
    from executions.services import do_create_execution

    kind = ref_kind or RefKind.BRANCH_OR_TAG
    return do_create_execution(workflow, ref=ref, ref_kind=kind, trigger="manual")


def run_now(workflow, ref: str = "main", ref_kind: str = ""):
    """Creates a run and runs it to its end in this thread, as the worker task does."""
    from executions.engine import run_execution

    execution = start_run(workflow, ref, ref_kind)
    run_execution(execution.pk)
    execution.refresh_from_db()
    return execution


def run_in_thread(execution_id: int) -> threading.Thread:
    from executions.engine import run_execution

    def target() -> None:
        close_old_connections()
        try:
            run_execution(execution_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name=f"worker-{execution_id}", daemon=True)
    thread.start()
    return thread


def log_text(execution) -> str:
    return "".join(execution.log_chunks.order_by("seq").values_list("text", flat=True))


def stage(execution, kind: str):
    return execution.stages.get(kind=kind)


def step_containers(marker: str) -> list[str]:
    """tests.realparts.list_build_step_containers, retried: `runc list` fails now and then when
    a container goes away while it reads."""
    from tests.realparts import list_build_step_containers

    for attempt in range(5):
        try:
            return list_build_step_containers(marker)
        except subprocess.CalledProcessError:
            if attempt == 4:
                raise
            time.sleep(0.1)
    return []


def leftovers(execution, since: float, marker: str | None = None, wait: float = 10.0) -> dict:
    """What the run left in the engine, after giving the engine `wait` seconds to clean up:
    its script containers, build working containers created since `since` (epoch seconds),
    and build step containers whose command contains `marker`."""
    from tests.realparts import external_containers

    deadline = time.monotonic() + wait
    while True:
        containers = [
            c
            for c in external_containers()
            if any(n.startswith(f"workflows-exec-{execution.pk}-") for n in c.get("Names", []))
            or (c.get("Command") == ["buildah"] and c.get("Created", 0) >= since - 1)
        ]
        steps = step_containers(marker) if marker else []
        if (not containers and not steps) or time.monotonic() > deadline:
            return {"containers": [c.get("Names") for c in containers], "steps": steps}
        time.sleep(0.2)


def pod_for(**changes: Any) -> BuildPod:
    """A Kubernetes builder pod's spec with made-up but valid values; `changes` override them."""
    from integrations.kubernetes.builder import BuildPod

    values = dict(
        name="workflows-build-1-2-1",
        namespace="builds",
        labels={"workflows.atmosly.io/execution": "1"},
        repo_url="https://git.example.com/team/app.git",
        public_repo_url="https://git.example.com/team/app.git",
        commit="a" * 40,
        context=".",
        dockerfile="Dockerfile",
        destinations=["registry.example.com/team/app:" + "a" * 40],
        platforms=["linux/arm64"],
        cache=True,
        spot=True,
        volume_size_gb=30,
        git_image="docker.io/alpine/git:2.47.2",
        spot_labels=["eks.amazonaws.com/capacityType=SPOT", "cloud.google.com/gke-spot=true"],
        git_password="token-123",
        registry_host="registry.example.com",
        registry_auth={"username": "u", "password": "registry-pw-9"},
        build_args={"NPM_TOKEN": "npm-secret-1"},
    )
    values.update(changes)
    return BuildPod(**values)
