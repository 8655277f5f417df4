"""Terminating a running run on real parts: the engine work really stops (the build's RUN step
process dies, the script container goes), the run ends Terminated within the grace period, and
nothing is left in the engine."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from django.conf import settings

from executions.models import Execution
from executions.services import do_terminate
from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from tests import base
from tests.base import wait_for
from tests.executions import (
    leftovers,
    log_text,
    make_git_workflow,
    run_in_thread,
    stage,
    start_run,
    step_containers,
)
from tests.realparts import sample_app_files, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def processes(*argv: str) -> set[int]:
    """Pids of the processes on this machine whose command line is exactly `argv`."""
    wanted = "\0".join(argv).encode() + b"\0"
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == wanted:
                found.add(int(proc.name))
        except OSError:
            continue
    return found


def processes_named(*words: str) -> set[int]:
    """Pids whose command line contains every one of `words`."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit():
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if all(word in cmdline for word in words):
                    found.add(int(proc.name))
        except OSError:
            continue
    return found


def terminate_and_wait(execution: Execution) -> float:
    """Asks to terminate, returns the seconds until the run reached a final status."""
    asked = time.monotonic()
    do_terminate(execution)
    grace = settings.TERMINATION_GRACE_SECONDS
    wait_for(
        lambda: Execution.objects.get(pk=execution.pk).is_terminal, grace + 10, "a final status"
    )
    return time.monotonic() - asked


def test_terminate_during_a_build_step(engine, project, registry, git_server):
    marker = unique_name("term")
    dockerfile = (
        "FROM localhost/busybox:latest\n"
        f'RUN echo "long step {marker}" && sleep 300\n'
        'RUN echo "never reached"\n'
    )
    files = sample_app_files(extra={"Dockerfile": dockerfile})
    workflow, _ = make_git_workflow(project, git_server, files, registry=registry)
    sleeping_before = processes("sleep", "300")
    started = time.time()
    execution = start_run(workflow)
    worker = run_in_thread(execution.pk)

    build = wait_for(
        lambda: stage(execution, "build").status == StageStatus.RUNNING and step_containers(marker),
        120,
        "the build's RUN step to be running",
    )
    assert len(build) == 1
    ours = wait_for(
        lambda: processes("sleep", "300") - sleeping_before, 30, "the step's sleep process"
    )

    took = terminate_and_wait(execution)
    worker.join(10)
    execution.refresh_from_db()
    assert execution.status == S.TERMINATED, execution.status_reason
    assert took < settings.TERMINATION_GRACE_SECONDS
    assert stage(execution, "build").status == StageStatus.TERMINATED
    assert stage(execution, "push").status == StageStatus.TERMINATED
    assert not processes("sleep", "300") & ours, "the RUN step's process survived"
    assert step_containers(marker) == []
    assert leftovers(execution, started, marker) == {"containers": [], "steps": []}
    log = log_text(execution)
    assert f"long step {marker}" in log
    assert "never reached\n" not in log
    assert not worker.is_alive()


def test_terminate_stops_only_its_own_build(engine, project, registry, git_server):
    """Two builds at once on one engine: terminating one leaves the other's step running."""
    runs = []
    for _ in range(2):
        marker = unique_name("both")
        dockerfile = f'FROM localhost/busybox:latest\nRUN echo "{marker}" && sleep 300\n'
        files = sample_app_files(extra={"Dockerfile": dockerfile})
        workflow, _ = make_git_workflow(project, git_server, files, registry=registry)
        execution = start_run(workflow)
        runs.append((execution, marker, run_in_thread(execution.pk)))
    for _, marker, _ in runs:
        wait_for(lambda m=marker: step_containers(m), 120, f"the step of {marker}")

    (first, first_marker, first_worker), (second, second_marker, second_worker) = runs
    terminate_and_wait(first)
    first_worker.join(10)
    assert Execution.objects.get(pk=first.pk).status == S.TERMINATED
    assert step_containers(first_marker) == []
    assert len(step_containers(second_marker)) == 1
    assert Execution.objects.get(pk=second.pk).status == S.RUNNING

    terminate_and_wait(second)
    second_worker.join(10)
    assert Execution.objects.get(pk=second.pk).status == S.TERMINATED
    assert step_containers(second_marker) == []


def test_terminate_during_a_script(engine, project, registry, git_server, docker_client):
    workflow, _ = make_git_workflow(
        project,
        git_server,
        sample_app_files(),
        registry=registry,
        scripts={"pre_build": "echo script started\nsleep 300\necho never reached"},
    )
    started = time.time()
    execution = start_run(workflow)
    worker = run_in_thread(execution.pk)
    name = f"workflows-exec-{execution.pk}-pre-build"
    wait_for(
        lambda: docker_client.api.containers(filters={"name": name, "status": "running"}),
        60,
        "the script container to be running",
    )

    took = terminate_and_wait(execution)
    worker.join(10)
    execution.refresh_from_db()
    assert execution.status == S.TERMINATED, execution.status_reason
    assert took < settings.TERMINATION_GRACE_SECONDS
    assert stage(execution, "script").status == StageStatus.TERMINATED
    assert stage(execution, "build").status == StageStatus.TERMINATED
    assert docker_client.api.containers(all=True, filters={"name": name}) == []
    assert leftovers(execution, started) == {"containers": [], "steps": []}
    assert "script started" in log_text(execution)
    assert "never reached" not in log_text(execution)


def test_terminate_during_a_clone(engine, project, registry):
    """A git server that accepts the connection and never answers: the clone hangs until the
    terminate kills git's whole process group."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/slow.git"
        service = base.make_service(project, name=unique_name("slow"), repo_url=url)
        execution = start_run(service.workflows.get())
        worker = run_in_thread(execution.pk)
        wait_for(
            lambda: processes_named("git-remote-http", url),
            30,
            "git to be connecting",
        )
        took = terminate_and_wait(execution)
        worker.join(10)
    finally:
        silent.close()
    execution.refresh_from_db()
    assert execution.status == S.TERMINATED, execution.status_reason
    assert took < settings.TERMINATION_GRACE_SECONDS
    assert stage(execution, "source").status == StageStatus.TERMINATED
    assert not processes_named("git-remote-http", url)
