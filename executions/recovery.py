"""Runs whose worker died (SIGKILL, OOM, machine lost) end Error instead of staying Running.

A worker writes the heartbeat of every run it holds every 2 s (executions.supervisor). A run is
lost when its heartbeat is older than the lease (WORKER_LEASE_SECONDS, default 30), which works
across machines, or at once when its worker was a process on this machine (WORKER_HOSTNAME)
that no longer exists. Every worker process checks every `recovery_interval()` seconds (a third
of the lease, at most 10; started on django-q2's `post_spawn`), so a run whose worker died is
marked Error at most a lease and a third after its last heartbeat, by any worker still running.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from atmosly.errors import Conflict
from executions.gates import registered_gates
from executions.models import Execution, StageKind, StageRun
from executions.runners.kubernetes_build import delete_build_pods
from executions.services import (
    do_change_stage_status,
    do_end_run,
    requeue_unclaimed,
)
from executions.status import ExecutionStatus, StageStatus
from executions.workspace import KEEP_FAILED_HOURS, workspace_of
from integrations.podman import buildsteps
from integrations.podman.engine import local_tags_of, remove_local_image

logger = logging.getLogger(__name__)
S = ExecutionStatus
RECOVERY_INTERVAL = 10.0


def recovery_interval() -> float:
    return min(RECOVERY_INTERVAL, settings.WORKER_LEASE_SECONDS / 3)


# How long recovery keeps killing the steps of a build whose worker died.
ORPHAN_BUILD_SECONDS = 5.0
_started = threading.Event()


def worker_gone(worker_id: str) -> bool:
    """True when the worker was a process on this host that is no longer running."""
    host, _, rest = worker_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != settings.WORKER_HOSTNAME or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover_lost_executions(lease_seconds: int | None = None) -> int:
    """Ends the runs whose worker is lost (Error, or Termination Failed if it was being
    terminated), and hands the Running runs no worker claimed within the lease (resumed after
    a gate, their task lost) to the queue again. Returns how many runs it ended or handed on."""
    lease = settings.WORKER_LEASE_SECONDS if lease_seconds is None else lease_seconds
    cutoff = timezone.now() - timedelta(seconds=lease)
    held = Execution.objects.filter(status__in=[S.RUNNING, S.TERMINATING]).exclude(worker_id="")
    count = 0
    for execution in held:
        stale = execution.heartbeat_at is None or execution.heartbeat_at < cutoff
        if not (stale or worker_gone(execution.worker_id)):
            continue
        if mark_lost(execution):
            count += 1
    return count + requeue_unclaimed(lease)


def mark_lost(execution: Execution) -> bool:
    stage = execution.stages.filter(status=StageStatus.RUNNING).first()
    reason = f"worker lost during {stage.name if stage else 'start-up'}"
    try:
        with transaction.atomic():
            final = S.TERMINATION_FAILED if execution.status == S.TERMINATING else S.ERROR
            for running in execution.stages.filter(status=StageStatus.RUNNING):
                do_change_stage_status(running, StageStatus.ERROR, "worker lost")
            do_end_run(execution, final, reason, later=StageStatus.SKIPPED)
    except Conflict:
        return False  # it moved on meanwhile (finished, or another worker recovered it)
    logger.warning("%s: %s", execution, reason)
    if stage is not None and stage.kind == StageKind.BUILD:
        stop_orphaned_build(stage)
    return True


def stop_orphaned_build(stage: StageRun) -> None:
    """podman goes on with a build whose client died: the RUN step in progress runs to its end
    and the next steps follow. Killing its steps fails the build, which then removes its working
    containers itself (integrations/podman/buildsteps.py). A Docker Engine cancelled it already."""
    if stage.execution.workflow.builder == "kubernetes":
        try:
            deleted = delete_build_pods(stage)
        except Exception:  # the cluster is unreachable: its pod ends at activeDeadlineSeconds
            logger.exception("could not delete the build pods of %s", stage)
            return
        if deleted:
            logger.warning("%s: deleted %d build pod(s)", stage.execution_id, deleted)
        return
    if stage.started_at is None:
        return
    token = buildsteps.build_token(stage.execution_id, stage.pk, stage.started_at)
    deadline = time.monotonic() + ORPHAN_BUILD_SECONDS
    killed = 0
    # Until no step has run for a second: a step may be starting as the one before it ends.
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.0:
        if buildsteps.list_steps(token):
            killed += buildsteps.kill_steps(token)
            quiet_since = time.monotonic()
        time.sleep(0.2)
    if killed:
        time.sleep(1)  # buildah deletes its killed steps itself; only then look for leftovers
        buildsteps.remove_stopped_steps(token)
        logger.warning("%s: killed %d step(s) of its build", stage.execution_id, killed)


def prune_kept_workspaces() -> int:
    """Failed runs keep their checkout and image for a re-run; after a day they go."""
    cutoff = timezone.now() - timedelta(hours=KEEP_FAILED_HOURS)
    pruned = 0
    for execution in Execution.objects.filter(
        status__in=[S.FAILED, S.ERROR],
        finished_at__lt=cutoff,
        finished_at__gt=cutoff - timedelta(days=7),
    ):
        workspace = workspace_of(execution)
        if not workspace.exists():
            continue
        shutil.rmtree(workspace, ignore_errors=True)
        for stage in execution.stages.filter(kind="build"):
            for tag in local_tags_of(stage.output):
                remove_local_image(tag)
        pruned += 1
    return pruned


def start_recovery_loop(**kwargs: object) -> None:
    """Connected to django-q2's post_spawn: one checking thread per worker process."""
    if _started.is_set():
        return
    _started.set()

    def loop() -> None:
        while True:
            try:
                recover_lost_executions()
                # Approval requests that ran out of time (the gates registered by approvals).
                for gate in registered_gates():
                    gate.expire_due()
                prune_kept_workspaces()
            except Exception:
                logger.exception("recovery check failed")
            finally:
                connections.close_all()
            time.sleep(recovery_interval())

    threading.Thread(target=loop, name="run-recovery", daemon=True).start()
