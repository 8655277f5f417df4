"""Runs an execution's stages (executions.supervisor starts one thread per run it takes).

The run's thread runs each stage's runner in a thread of its own and supervises it: it flushes
logs, honours a terminate request (which the supervisor's watch thread notices for every run of
the process at once, and which also writes their heartbeats) and the stage timeout. Only the
run's thread writes the run to the database.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections, transaction

from executions import masking
from executions.logs import LogWriter
from executions.models import Execution, Report, StageKind, StageRun
from executions.runners import Context, StageError, runner_for
from executions.runners.base import Terminated
from executions.services import do_change_stage_status, do_change_status
from executions.status import ExecutionStatus, StageStatus
from executions.supervisor import supervisor, worker_id

logger = logging.getLogger(__name__)
S = ExecutionStatus
SUPERVISE_SECONDS = 0.1
# What stages learn about the run itself; Source also says what a bare `ref` named.
EXECUTION_OUTPUTS = (
    *("commit_sha", "commit_message", "image", "image_digest"),
    *("branch", "tag", "ref_kind"),
)


def claim(execution_id: int) -> Execution | None:
    """Takes the run for this process, whatever its project's limit (the caller asked for this
    run): Pending → Running, or a Running run that nobody holds (resumed after a gate). Two
    workers can never both get it: one conditional UPDATE (executions.scheduler.claim_run)."""
    from executions.scheduler import claim_run

    return claim_run(execution_id, worker_id())


def run_execution(execution_id: int) -> str:
    """Claims and runs one run to its end (or its gate) in this thread; returns the final (or
    waiting) status. Used by `run_workflow --inline`, EXECUTIONS_RUN_INLINE and the tests;
    the workers go through executions.supervisor instead."""
    close_old_connections()
    execution = claim(execution_id)
    if execution is None:
        return "not claimed"
    try:
        return run_claimed(execution)
    finally:
        connections.close_all()


def run_claimed(execution: Execution) -> str:
    """Runs a run this process has claimed, watched (heartbeat, terminate) while it runs."""
    watch = supervisor.watch(execution.pk)
    try:
        return Engine(execution, watch.terminating).run()
    finally:
        supervisor.unwatch(execution.pk)


def workspace_of(execution: Execution) -> Path:
    return Path(settings.WORKSPACE_ROOT) / f"execution-{execution.pk}"


# A failed run keeps its checkout and built image this long, for a re-run from the failed stage.
KEEP_FAILED_HOURS = 24


class Engine:
    def __init__(self, execution: Execution, terminating: threading.Event | None = None):
        self.execution = execution
        self.workflow = execution.workflow
        self.workspace = workspace_of(execution)
        self.outputs: dict = {}
        # Set by the supervisor's watch thread when someone asks to terminate the run.
        self.terminating = terminating or threading.Event()

    def run(self) -> str:
        from executions.variables import resolve_variables

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
        from approvals.gates import waiting_status_for

        waiting = waiting_status_for(step)
        if waiting is None:
            return None
        from approvals.gates import on_gate_reached

        # One transaction: nobody can see the run waiting without its approval request.
        with transaction.atomic():
            do_change_stage_status(stage, StageStatus.WAITING)
            do_change_status(self.execution, waiting, f"{stage.name} is waiting")
            on_gate_reached(self.execution, stage, waiting)
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

        def target() -> None:
            try:
                result["output"] = runner_for(stage.kind).run(ctx) or {}
            except BaseException as exc:  # handed to the supervising thread
                result["error"] = exc
            finally:
                connections.close_all()

        thread = threading.Thread(target=target, name=f"stage-{stage.pk}", daemon=True)
        thread.start()
        deadline = time.monotonic() + self.workflow.stage_timeout_minutes * 60
        timed_out = False
        while thread.is_alive():
            thread.join(SUPERVISE_SECONDS)
            if self.log.due():
                self.log.flush()
            if not ctx.cancelled.is_set() and self.termination_requested():
                self.cancel(ctx)
                return self.terminate(stage, thread, ctx, result)
            if not timed_out and time.monotonic() > deadline:
                timed_out = True
                self.log.line(
                    f"Stage timed out after {self.workflow.stage_timeout_minutes} minutes"
                )
                self.cancel(ctx)
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
        do_change_stage_status(stage, StageStatus.SUCCEEDED, **result.get("output", {}))
        # What the run produced, shown on the execution: commit, message, image, digest.
        recorded = {k: v for k, v in result.get("output", {}).items() if k in EXECUTION_OUTPUTS}
        if recorded:
            Execution.objects.filter(pk=self.execution.pk).update(**recorded)
        return None

    def save_reports(self, stage: StageRun, result: dict) -> None:
        """Reports a runner made (the scan's), kept whether its stage passed or failed."""
        reports = result.get("output", {}).pop("reports", None)
        for report in reports or getattr(result.get("error"), "reports", []):
            # Runners mask what they put in a report; this is the one place they are written.
            report["content"] = self.log.mask(report["content"])
            Report.objects.create(execution=self.execution, stage_run=stage, **report)

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
        self.skip_rest(stage, StageStatus.TERMINATED)
        if thread.is_alive():
            reason = f"{stage.name} did not stop within {grace} s; it may still be running"
            do_change_stage_status(stage, StageStatus.ERROR, reason)
            return self.finish(S.TERMINATION_FAILED, reason)
        # A runner may say what it left behind, e.g. the release a deploy put back.
        error = (result or {}).get("error")
        detail = str(error) if isinstance(error, Terminated) else ""
        do_change_stage_status(stage, StageStatus.TERMINATED, detail or "terminated")
        reason = f"Terminated during {stage.name}" + (f": {detail}" if detail else "")
        return self.finish(S.TERMINATED, reason)

    def fail(self, stage: StageRun, error: StageError) -> str:
        self.log.line(f"ERROR: {error.message}")
        self.log.flush(final=True)
        status = StageStatus.ERROR if error.system else StageStatus.FAILED
        do_change_stage_status(stage, status, error.message)
        self.skip_rest(stage, StageStatus.SKIPPED)
        return self.finish(S.ERROR if error.system else S.FAILED, f"{stage.name}: {error.message}")

    def skip_rest(self, stage: StageRun, status: str) -> None:
        for later in self.execution.stages.filter(
            position__gt=stage.position, status__in=[StageStatus.PENDING, StageStatus.WAITING]
        ):
            do_change_stage_status(
                later,
                StageStatus.SKIPPED if status == StageStatus.SKIPPED else StageStatus.TERMINATED,
            )

    def finish(self, status: str, reason: str) -> str:
        current = Execution.objects.filter(pk=self.execution.pk).values_list("status", flat=True)[0]
        if current == S.TERMINATING and status not in (S.TERMINATED, S.TERMINATION_FAILED):
            # Terminate arrived as the last stage ended: honour it, nothing is left running.
            status, reason = S.TERMINATED, "Terminated"
        do_change_status(self.execution, status, reason)
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
        if self.outputs.get("local_tag"):
            from executions.runners.engine_client import remove_local_image

            remove_local_image(self.outputs["local_tag"])
