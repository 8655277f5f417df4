"""Runs an execution's stages: one thread per run (executions.supervisor starts it in a worker
process that holds many runs; `run_execution` runs one in the caller's thread).

The run's thread runs each stage's runner in a thread of its own and supervises it: it flushes
logs as soon as they are due (woken by the log writer, not on a tick), and every
SUPERVISE_SECONDS honours a terminate request and the stage timeout. The process's watch thread
(executions.watch) writes the heartbeats of all its runs and notices terminate requests for
them in one query. Only the run's thread writes the run to the database.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections

from executions import masking
from executions.gates import waiting_status_for
from executions.logs import LogWriter
from executions.models import Execution, StageKind, StageRun
from executions.runners import Context, StageError, runner_for
from executions.runners.base import Terminated
from executions.services import (
    EXECUTION_OUTPUTS,
    claim_execution,
    do_change_stage_status,
    do_end_run,
    do_finish_stage,
    do_save_reports,
    do_wait_at_gate,
)
from executions.status import ExecutionStatus, StageStatus
from executions.variables import resolve_variables
from executions.watch import watcher, worker_id
from executions.workspace import KEEP_FAILED_HOURS, workspace_of
from integrations.podman.engine import local_tags_of, remove_local_image

logger = logging.getLogger(__name__)
S = ExecutionStatus
SUPERVISE_SECONDS = 0.1
__all__ = [
    "EXECUTION_OUTPUTS",
    "KEEP_FAILED_HOURS",
    "Engine",
    "run_claimed",
    "run_execution",
    "workspace_of",
]


def run_execution(execution_id: int) -> str:
    """Claims one run (`claim_execution`, whatever its project's limit: the caller asked for
    this run) and runs it to its end or its gate in this thread; returns the final (or waiting)
    status, or "not claimed". Used by `run_workflow --inline`, EXECUTIONS_RUN_INLINE and the
    tests; worker processes take runs through executions.supervisor instead."""
    close_old_connections()
    execution = claim_execution(execution_id, worker_id())
    if execution is None:
        return "not claimed"
    try:
        return run_claimed(execution)
    finally:
        connections.close_all()


def run_claimed(execution: Execution) -> str:
    """Runs a run this process has claimed, watched (heartbeat, terminate) while it runs."""
    watch = watcher.watch(execution.pk)
    try:
        return Engine(execution, watch.terminating).run()
    finally:
        watcher.unwatch(execution.pk)


class Engine:
    def __init__(self, execution: Execution, terminating: threading.Event | None = None):
        self.execution = execution
        self.workflow = execution.workflow
        self.workspace = workspace_of(execution)
        self.outputs: dict = {}
        # Set by the watch thread (executions.watch) when someone asks to terminate the run.
        self.terminating = terminating or threading.Event()

    def run(self) -> str:
        try:
            variables = resolve_variables(self.workflow)
        except StageError as exc:
            return self.finish(S.FAILED if not exc.system else S.ERROR, exc.message)
        self.log = LogWriter(self.execution, secrets=variables.secret_values)
        self.variables = variables
        # Reasons and stage errors written while this worker runs the run are masked with
        # every secret it knows (secret-manager values and a scanner's token included).
        masking.register(self.execution.pk, lambda text: self.log.mask(text))
        try:
            return self.run_stages()
        finally:
            masking.unregister(self.execution.pk)

    def run_stages(self) -> str:
        self.take_over_workspace()
        for stage in self.execution.stages.order_by("position"):
            if stage.status == StageStatus.SUCCEEDED:
                self.outputs.update(stage.output)
                continue
            if stage.status not in (StageStatus.PENDING, StageStatus.WAITING):
                continue
            gate = self.gate(stage)
            if gate:
                return gate
            outcome = self.run_stage(stage)
            if outcome is not None:
                return outcome
        return self.finish(S.SUCCEEDED, "")

    def gate(self, stage: StageRun) -> str | None:
        """A manual deploy or one needing approval parks the run until a person acts."""
        if stage.kind != StageKind.DEPLOY or stage.status == StageStatus.WAITING:
            return None
        step = stage.workflow_environment
        if step is None:
            return None
        # The gates registered by other apps (approvals) decide; the engine never imports them.
        found = waiting_status_for(step)
        if found is None:
            return None
        gate, waiting = found
        do_wait_at_gate(self.execution, stage, gate, waiting)
        self.cleanup_workspace()
        return waiting

    def run_stage(self, stage: StageRun) -> str | None:
        do_change_stage_status(stage, StageStatus.RUNNING)
        self.log.set_stage(stage)
        ctx = Context(
            execution=self.execution,
            stage=stage,
            workflow=self.workflow,
            workspace=self.workspace,
            log=self.log,
            secrets=self.variables.secrets,
            build_args=self.variables.build,
            runtime_env=self.variables.runtime,
            outputs=self.outputs,
        )
        result: dict = {}
        done = threading.Event()

        def target() -> None:
            try:
                result["output"] = runner_for(stage.kind).run(ctx) or {}
            except BaseException as exc:  # handed to the supervising thread
                result["error"] = exc
            finally:
                connections.close_all()
                done.set()
                self.log.wake.set()  # the supervisor notices the end at once

        thread = threading.Thread(target=target, name=f"stage-{stage.pk}", daemon=True)
        thread.start()
        deadline = time.monotonic() + self.workflow.stage_timeout_minutes * 60
        timed_out = False
        # Logs are flushed as soon as they are due (LogWriter.wait wakes on the first line of a
        # batch); the terminate and timeout checks run every SUPERVISE_SECONDS, however often
        # the log wakes this loop.
        next_check = time.monotonic() + SUPERVISE_SECONDS
        while not done.is_set():
            if self.log.wait(max(0.0, next_check - time.monotonic()), until=done):
                self.log.flush()
            if done.is_set() or time.monotonic() < next_check:
                continue
            next_check = time.monotonic() + SUPERVISE_SECONDS
            if not ctx.cancelled.is_set() and self.termination_requested():
                self.cancel(ctx)
                return self.terminate(stage, thread, ctx, result)
            if not timed_out and time.monotonic() > deadline:
                timed_out = True
                self.log.line(
                    f"Stage timed out after {self.workflow.stage_timeout_minutes} minutes"
                )
                self.cancel(ctx)
        thread.join()
        self.log.flush(final=True)
        self.save_reports(stage, result)
        if timed_out:
            return self.fail(
                stage,
                StageError(
                    f"{stage.name} timed out after {self.workflow.stage_timeout_minutes} minutes"
                ),
            )
        error = result.get("error")
        if isinstance(error, Terminated) or (error and self.termination_requested()):
            return self.terminate(stage, thread, ctx, result)
        if error is not None:
            if not isinstance(error, StageError):
                logger.exception("stage %s crashed", stage, exc_info=error)
                error = StageError(f"internal error: {type(error).__name__}: {error}", system=True)
            return self.fail(stage, error)
        self.outputs.update(result.get("output", {}))
        do_finish_stage(stage, result.get("output", {}))
        return None

    def save_reports(self, stage: StageRun, result: dict) -> None:
        """Reports a runner made (the scan's), kept whether its stage passed or failed."""
        reports = result.get("output", {}).pop("reports", None)
        reports = list(reports or getattr(result.get("error"), "reports", []))
        for report in reports:
            # Runners mask what they put in a report; this is the last look before it is kept.
            report["content"] = self.log.mask(report["content"])
        do_save_reports(stage, reports)

    def cancel(self, ctx: Context) -> None:
        ctx.cancelled.set()
        for callback in ctx.cancel_callbacks:
            try:
                callback()
            except Exception:
                logger.exception("cancel callback failed")

    def termination_requested(self) -> bool:
        return self.terminating.is_set()

    def terminate(
        self, stage: StageRun, thread: threading.Thread, ctx: Context, result: dict | None = None
    ) -> str:
        grace = settings.TERMINATION_GRACE_SECONDS
        self.log.line(f"Termination requested: stopping {stage.name} (grace {grace} s)")
        thread.join(grace)
        self.log.flush(final=True)
        self.execution.refresh_from_db()
        if thread.is_alive():
            reason = f"{stage.name} did not stop within {grace} s; it may still be running"
            return self.finish(
                S.TERMINATION_FAILED,
                reason,
                stage=stage,
                stage_status=StageStatus.ERROR,
                later=StageStatus.TERMINATED,
            )
        # A runner may say what it left behind, e.g. the release a deploy put back.
        error = (result or {}).get("error")
        detail = str(error) if isinstance(error, Terminated) else ""
        reason = f"Terminated during {stage.name}" + (f": {detail}" if detail else "")
        return self.finish(
            S.TERMINATED,
            reason,
            stage=stage,
            stage_status=StageStatus.TERMINATED,
            stage_error=detail or "terminated",
            later=StageStatus.TERMINATED,
        )

    def fail(self, stage: StageRun, error: StageError) -> str:
        self.log.line(f"ERROR: {error.message}")
        self.log.flush(final=True)
        return self.finish(
            S.ERROR if error.system else S.FAILED,
            f"{stage.name}: {error.message}",
            stage=stage,
            stage_status=StageStatus.ERROR if error.system else StageStatus.FAILED,
            stage_error=error.message,
            later=StageStatus.SKIPPED,
        )

    def finish(self, status: str, reason: str, **ending: Any) -> str:
        """Ends the run (`do_end_run`, with `ending`: the stage it ended at, its status and
        error, what the later stages become) and removes the workspace unless the run failed
        (a re-run from the failed stage uses it)."""
        current = Execution.objects.filter(pk=self.execution.pk).values_list("status", flat=True)[0]
        if current == S.TERMINATING and status not in (S.TERMINATED, S.TERMINATION_FAILED):
            # Terminate arrived as the last stage ended: honour it, nothing is left running.
            status, reason = S.TERMINATED, "Terminated"
        do_end_run(self.execution, status, reason, **ending)
        if status not in (S.FAILED, S.ERROR):
            self.cleanup_workspace()
        return status

    def take_over_workspace(self) -> None:
        """A re-run from the failed stage continues in the checkout its original run left."""
        original = self.execution.rerun_of
        reused = self.execution.stages.filter(output__has_key="reused_from").exists()
        if original is None or not reused or self.workspace.exists():
            return
        kept = workspace_of(original)
        if kept.exists():
            kept.rename(self.workspace)
            self.log.line(f"Continuing in the checkout of #{original.number}")

    def cleanup_workspace(self) -> None:
        shutil.rmtree(self.workspace, ignore_errors=True)
        for tag in local_tags_of(self.outputs):
            remove_local_image(tag)
