"""A worker that dies mid-stage never leaves its run stuck: the next worker to run marks it Error
("worker lost during <stage>"), keeps the logs written before the death, skips the later stages
and stops the build step the dead worker left running in the engine.

The SIGKILL test uses real `manage.py qcluster` processes; the lease test calls
`recover_lost_executions()` directly with a worker that looks like it ran on another machine.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from executions.models import Execution
from executions.recovery import recover_lost_executions
from executions.services import do_change_stage_status, do_change_status
from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from tests.base import wait_for
from tests.executions import leftovers, log_text, make_git_workflow, stage, start_run
from tests.executions import step_containers as running_steps
from tests.executions.test_worker_processes import worker_starter
from tests.realparts import sample_app_files, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

# The bound: a lost run is marked within 60 s after a worker runs again.
RECOVERY_BOUND_SECONDS = 60


def sleeping(seconds: int) -> set[int]:
    """Pids of `sleep <seconds>` processes on this machine (a RUN step's, here)."""
    wanted = f"sleep\0{seconds}\0".encode()
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == wanted:
                found.add(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture
def start_worker(transactional_db, real_services, tmp_path):
    """qcluster subprocesses on the test database, stopped before it is emptied."""
    yield from worker_starter(tmp_path)


def dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaped (this machine's PID 1 does not reap orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def has_line(execution, line: str) -> bool:
    return line in log_text(execution).splitlines()


def test_worker_killed_mid_build(start_worker, project, registry, git_server, capsys):
    marker = unique_name("crash")
    dockerfile = (
        "FROM localhost/busybox:latest\n"
        f'RUN echo "before the kill {marker}" && sleep 37 && echo "after the kill {marker}"\n'
        f'RUN echo "next step {marker}"\n'
    )
    workflow, sha = make_git_workflow(
        project, git_server, sample_app_files(extra={"Dockerfile": dockerfile}), registry=registry
    )
    first = start_worker()
    first.wait_ready()
    sleeping_before = sleeping(37)
    started = time.time()
    execution = start_run(workflow)

    wait_for(
        lambda: running_steps(marker) and has_line(execution, f"before the kill {marker}"),
        90,
        "the build's RUN step to be running and its first line persisted",
    )
    step_sleep = wait_for(lambda: sleeping(37) - sleeping_before, 10, "the step's sleep")
    execution.refresh_from_db()
    worker_pid = int(execution.worker_id.split(":")[1])
    assert execution.status == S.RUNNING

    first.kill()  # SIGKILL: no cleanup, no final status, no last log flush
    wait_for(lambda: dead(worker_pid), 5, "the worker process to die")
    time.sleep(1)
    assert Execution.objects.get(pk=execution.pk).status == S.RUNNING  # nobody noticed yet
    assert running_steps(marker), "the engine went on with the step after the worker died"

    second = start_worker()
    restarted = time.monotonic()
    wait_for(
        lambda: Execution.objects.get(pk=execution.pk).is_terminal,
        RECOVERY_BOUND_SECONDS,
        "the new worker to mark the run",
    )
    took = time.monotonic() - restarted
    with capsys.disabled():
        print(f"\n[crash recovery] run marked {took:.2f} s after a new worker was started")
    assert took < 20, took  # the bound is 60 s; the check runs as soon as the worker spawns

    execution.refresh_from_db()
    assert execution.status == S.ERROR
    assert execution.status_reason == "worker lost during Build"
    assert execution.worker_id == ""
    assert list(execution.stages.values_list("kind", "status", "error")) == [
        ("source", StageStatus.SUCCEEDED, ""),
        ("build", StageStatus.ERROR, "worker lost"),
        ("push", StageStatus.SKIPPED, ""),
    ]
    log = log_text(execution)
    assert f"Checked out {sha[:12]}: init" in log
    assert has_line(execution, f"before the kill {marker}")
    assert not has_line(execution, f"after the kill {marker}")

    # The dead worker's build step was stopped by the recovery: no step, no sleep, no
    # working container left, and the build never got to its next step.
    wait_for(lambda: not running_steps(marker), 10, "the orphaned build step to go")
    assert not sleeping(37) & step_sleep
    assert leftovers(execution, started, marker) == {"containers": [], "steps": []}
    wait_for(lambda: "killed 1 step(s) of its build" in second.log(), 10, "the recovery's log")
    assert second.process.poll() is None  # the new worker lives on
    assert not has_line(execution, f"next step {marker}")


@pytest.fixture
def running_build(workflow):
    """A run in its Build stage, held by a worker that wrote its heartbeat just now."""
    execution = start_run(workflow)
    do_change_status(execution, S.RUNNING)
    for kind in ("source", "script", "scan"):
        done = stage(execution, kind)
        do_change_stage_status(done, StageStatus.RUNNING)
        do_change_stage_status(done, StageStatus.SUCCEEDED)
    do_change_stage_status(stage(execution, "build"), StageStatus.RUNNING)
    return execution


def hold(execution, worker_id: str, heartbeat_age: float) -> None:
    Execution.objects.filter(pk=execution.pk).update(
        worker_id=worker_id, heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age)
    )


@pytest.mark.django_db(transaction=False)
def test_lease_expiry_of_a_worker_on_another_host(running_build, settings):
    settings.WORKER_LEASE_SECONDS = 30
    # Another machine: its pid cannot be checked from here, only its heartbeat.
    hold(running_build, "build-host-7:4242:abc123", heartbeat_age=5)
    assert recover_lost_executions() == 0
    assert Execution.objects.get(pk=running_build.pk).status == S.RUNNING

    hold(running_build, "build-host-7:4242:abc123", heartbeat_age=31)
    assert recover_lost_executions() == 1
    running_build.refresh_from_db()
    assert running_build.status == S.ERROR
    assert running_build.status_reason == "worker lost during Build"
    statuses = dict(running_build.stages.values_list("name", "status"))
    assert statuses["Source"] == StageStatus.SUCCEEDED
    assert statuses["Build"] == StageStatus.ERROR
    assert {statuses[n] for n in ("Push", "Deploy dev", "Deploy staging", "Deploy prod")} == {
        StageStatus.SKIPPED
    }
    assert recover_lost_executions() == 0  # marked once


@pytest.mark.django_db(transaction=False)
def test_dead_local_worker_is_noticed_before_its_lease_ends(running_build):
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    hold(running_build, f"{socket.gethostname()}:{gone.pid}:abc123", heartbeat_age=0)
    assert recover_lost_executions() == 1
    assert Execution.objects.get(pk=running_build.pk).status == S.ERROR


@pytest.mark.django_db(transaction=False)
def test_lost_while_terminating_ends_termination_failed(running_build):
    hold(running_build, "build-host-7:4242:abc123", heartbeat_age=3600)
    do_change_status(running_build, S.TERMINATING, "Termination requested")
    assert recover_lost_executions() == 1
    running_build.refresh_from_db()
    assert running_build.status == S.TERMINATION_FAILED
    assert running_build.status_reason == "worker lost during Build"
