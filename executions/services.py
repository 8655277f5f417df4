"""The run lifecycle: every change to an execution goes through here; `check_*` validates,
`do_*` writes. Create (`do_create_execution`), claim (`claim_execution`), resume after a gate
(`do_resume`), record a stage's outcome (`do_finish_stage`), end (`do_end_run`), terminate
(`do_terminate`) and re-run (`do_rerun`). Triggers, approvals, the engine and recovery call
down into these; nothing here imports them.

Status moves are conditional UPDATEs (`WHERE status = <expected>`), so two processes can never
both make the same move: the second finds the row count 0 and is refused.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from atmosly.errors import Conflict
from executions.analytics import record_finished_run, record_finished_stage
from executions.gates import Gate, registered_gates
from executions.live import publish_project, publish_stage, publish_status
from executions.masking import mask_text
from executions.models import (
    Execution,
    RefKind,
    Report,
    StageKind,
    StageRun,
    StatusChange,
    Trigger,
)
from executions.queue import enqueue_execution
from executions.status import (
    STAGE_TRANSITIONS,
    TERMINAL,
    WAITING,
    ExecutionStatus,
    StageStatus,
    can_move,
)
from executions.workspace import workspace_of
from workflows.models import Workflow
from workflows.permissions import CHANGE, is_member
from workflows.services import validate_for_run

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from workflows.models import Environment


S = ExecutionStatus
# What stages learn about the run itself and the run shows: commit, message, image, digest;
# Source also says what a bare `ref` named.
EXECUTION_OUTPUTS = (
    *("commit_sha", "commit_message", "image", "image_digest"),
    *("branch", "tag", "ref_kind"),
)
# Stages that have not started: when the run ends early they are skipped or terminated.
UNSTARTED_STAGES = (StageStatus.PENDING, StageStatus.WAITING)


class IllegalTransition(Conflict):
    """A status move the machine does not allow, or that another process made first."""

    def __init__(self, execution: Execution, current: str, new: str):
        self.execution = execution
        self.current = current
        self.new = new
        super().__init__(f"{execution} cannot move from {S(current).label} to {S(new).label}")


class IllegalStageTransition(Conflict):
    """A stage move STAGE_TRANSITIONS does not allow, or that another process made first."""

    def __init__(self, stage: StageRun, current: str | None, new: str):
        self.stage = stage
        self.current = current
        self.new = new
        super().__init__(f"stage {stage.name} cannot move from {current} to {new}")


def _move(
    execution: Execution,
    new: str,
    reason: str = "",
    *,
    only_from: str | None = None,
    unheld: bool = False,
    **extra: Any,
) -> Execution:
    """The one conditional UPDATE behind every status move: from the stored status (or only
    from `only_from`; with `unheld`, only while no worker holds the run) to `new`, with
    `extra` fields written in the same UPDATE. Records the StatusChange, publishes after
    commit. Raises IllegalTransition when refused."""
    reason = mask_text(execution.pk, reason)[:500]
    with transaction.atomic():
        current = Execution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
        if current is None or (only_from is not None and current != only_from):
            raise IllegalTransition(execution, current or execution.status, new)
        if not can_move(current, new):
            raise IllegalTransition(execution, current, new)
        now = timezone.now()
        fields: dict[str, Any] = {"status": new, "status_changed_at": now, "status_reason": reason}
        if new == S.RUNNING and execution.started_at is None:
            fields["started_at"] = now
        if new in TERMINAL:
            fields["finished_at"] = now
        if new in TERMINAL or new in WAITING:
            # Nobody holds a waiting run: whichever worker resumes it claims it anew.
            fields["worker_id"] = ""
        fields.update(extra)
        rows = Execution.objects.filter(pk=execution.pk, status=current)
        if unheld:
            rows = rows.filter(worker_id="")
        if rows.update(**fields) != 1:
            raise IllegalTransition(execution, current, new)
        StatusChange.objects.create(
            execution=execution, from_status=current, to_status=new, reason=reason
        )
        if new in TERMINAL:
            record_finished_run(execution.pk)
    for field, value in fields.items():
        setattr(execution, field, value)
    transaction.on_commit(lambda: publish_status(execution))
    return execution


def do_change_status(execution: Execution, new: str, reason: str = "") -> Execution:
    """Moves an execution to `new` if the machine allows it from its stored status. The reason
    is masked like the log (before it is cut to 500 characters): it is shown everywhere."""
    return _move(execution, new, reason)


def claim_execution(execution_id: int, worker_id: str) -> Execution | None:
    """Takes the run for the worker `worker_id` with one conditional UPDATE: a Pending run
    becomes Running, or a Running run nobody holds (resumed after a gate, or handed back by
    recovery) gets this worker. Two workers can never both get it: the row count says. None
    when the run is gone, held, or in any other status."""
    execution = Execution.objects.filter(pk=execution_id).first()
    if execution is None or execution.worker_id:
        return None
    held = {"worker_id": worker_id, "heartbeat_at": timezone.now()}
    if execution.status == S.PENDING:
        try:
            return _move(execution, S.RUNNING, "", only_from=S.PENDING, unheld=True, **held)
        except IllegalTransition:
            return None
    if execution.status != S.RUNNING:
        return None
    took = Execution.objects.filter(pk=execution_id, status=S.RUNNING, worker_id="").update(**held)
    if took != 1:
        return None
    execution.refresh_from_db()
    return execution


def do_heartbeats(execution_ids: list[int], worker_id: str) -> int:
    """The worker `worker_id` says it is alive for the runs it holds among `execution_ids`, in
    one UPDATE (recovery ends runs whose heartbeat is older than the lease). Returns how many
    rows it touched: a run another worker holds, or one that ended, is left alone."""
    return Execution.objects.filter(pk__in=execution_ids, worker_id=worker_id).update(
        heartbeat_at=timezone.now()
    )


def do_resume(execution: Execution, reason: str) -> Execution:
    """A waiting run goes on: Deployment/Approval Pending → Running, handed to the workers
    after commit. Until a worker claims it the run is Running with no worker; its heartbeat is
    set now, so recovery (`requeue_unclaimed`) hands it to the queue again if no worker has
    claimed it within the lease (a lost task), never leaving it Running for ever."""
    if execution.status not in WAITING:
        execution.refresh_from_db(fields=["status"])
    if execution.status not in WAITING:
        raise IllegalTransition(execution, execution.status, S.RUNNING)
    _move(execution, S.RUNNING, reason, only_from=execution.status, heartbeat_at=timezone.now())
    transaction.on_commit(lambda: enqueue_execution(execution.pk))
    return execution


def do_wait_at_gate(execution: Execution, stage: StageRun, gate: Gate, waiting: str) -> None:
    """Parks the run at `stage`, in one transaction: the stage Waiting, the run `waiting`
    (Deployment or Approval Pending, no worker), and what the gate does when reached (an
    approval request): nobody can see the run waiting without its request."""
    with transaction.atomic():
        do_change_stage_status(stage, StageStatus.WAITING)
        do_change_status(execution, waiting, f"{stage.name} is waiting")
        gate.on_reached(execution, stage, waiting)


def requeue_unclaimed(lease_seconds: int) -> int:
    """Running runs that no worker has claimed for `lease_seconds` (resumed after a gate, their
    task lost) go to the queue again; the claim is conditional, so a task that was only slow
    makes the second one a no-op. Returns how many were handed on."""
    cutoff = timezone.now() - timedelta(seconds=lease_seconds)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    count = 0
    for pk in Execution.objects.filter(stale, status=S.RUNNING, worker_id="").values_list(
        "pk", flat=True
    ):
        touched = Execution.objects.filter(stale, pk=pk, status=S.RUNNING, worker_id="").update(
            heartbeat_at=timezone.now()
        )
        if touched == 1:  # one recovery loop hands it on, not every worker's
            transaction.on_commit(partial(enqueue_execution, pk))
            count += 1
    return count


def do_change_stage_status(stage: StageRun, new: str, error: str = "", **output: Any) -> StageRun:
    """Moves a stage run to `new` (STAGE_TRANSITIONS; IllegalStageTransition otherwise); its
    error is masked like the log before it is cut to 500 characters and stored."""
    error = mask_text(stage.execution_id, error)[:500]
    current = StageRun.objects.filter(pk=stage.pk).values_list("status", flat=True).first()
    if current is None or new not in STAGE_TRANSITIONS.get(current, frozenset()):
        raise IllegalStageTransition(stage, current, new)
    now = timezone.now()
    fields: dict = {"status": new, "error": error}
    if new == StageStatus.RUNNING:
        fields["started_at"] = now
    if new in (
        StageStatus.SUCCEEDED,
        StageStatus.FAILED,
        StageStatus.ERROR,
        StageStatus.TERMINATED,
    ):
        fields["finished_at"] = now
    if output:
        fields["output"] = {**stage.output, **output}
    with transaction.atomic():
        if StageRun.objects.filter(pk=stage.pk, status=current).update(**fields) != 1:
            raise IllegalStageTransition(stage, current, new)  # it moved meanwhile
        if "finished_at" in fields:
            # Its run may have ended first (terminated): its stage statistics were written then.
            record_finished_stage(stage.pk)
    for field, value in fields.items():
        setattr(stage, field, value)
    transaction.on_commit(lambda: publish_stage(stage))
    return stage


def do_finish_stage(stage: StageRun, output: dict) -> StageRun:
    """A stage succeeded: Running → Succeeded with its output, and what it produced about the
    run itself (EXECUTION_OUTPUTS: commit, message, image, digest) is written on the run."""
    with transaction.atomic():
        do_change_stage_status(stage, StageStatus.SUCCEEDED, **output)
        recorded = {k: v for k, v in output.items() if k in EXECUTION_OUTPUTS}
        if recorded:
            Execution.objects.filter(pk=stage.execution_id).update(**recorded)
    return stage


def do_save_reports(stage: StageRun, reports: list[dict]) -> None:
    """Stores the reports a stage's runner made (a scan's), already masked by the caller."""
    for report in reports:
        Report.objects.create(execution_id=stage.execution_id, stage_run=stage, **report)


def skip_later_stages(execution: Execution, status: str, after: StageRun | None = None) -> None:
    """The stages that had not started (after `after`, or all) end `status`: Skipped when the
    run failed or was rejected, Terminated when it was terminated."""
    later = execution.stages.filter(status__in=UNSTARTED_STAGES)
    if after is not None:
        later = later.filter(position__gt=after.position)
    for stage in later.order_by("position"):
        do_change_stage_status(stage, status)


def do_end_run(
    execution: Execution,
    status: str,
    reason: str,
    *,
    stage: StageRun | None = None,
    stage_status: str | None = None,
    stage_error: str | None = None,
    later: str | None = None,
) -> Execution:
    """Ends the run, in one transaction: `stage` (where it ended, if any) moves to
    `stage_status` with `stage_error` (default: the reason), the stages after it that had not
    started move to `later` if given (all unstarted ones when no stage is given), and the run
    moves to
    the final `status` with `reason`. A Conflict (IllegalTransition or IllegalStageTransition)
    when it moved meanwhile; nothing is written then."""
    with transaction.atomic():
        if stage is not None and stage_status is not None:
            error = reason if stage_error is None else stage_error
            do_change_stage_status(stage, stage_status, error)
        if later is not None:
            skip_later_stages(execution, later, after=stage)
        return do_change_status(execution, status, reason)


def plan_stages(
    workflow: Workflow, only_environment: Environment | None = None
) -> list[dict[str, Any]]:
    """The stage runs a workflow's definition makes, in order. With `only_environment` (a
    rollback): just the deploy to that environment, as the image is already known."""
    if only_environment is not None:
        step = workflow.deploy_steps.select_related("environment").get(environment=only_environment)
        return [
            {
                "kind": StageKind.DEPLOY,
                "name": f"Deploy {step.environment.name}",
                "environment": step.environment,
                "workflow_environment": step,
            }
        ]
    stages: list[dict] = [{"kind": StageKind.SOURCE, "name": "Source"}]
    scripts = workflow.scripts or {}

    def script(hook: str, label: str) -> None:
        if (scripts.get(hook) or "").strip():
            stages.append({"kind": StageKind.SCRIPT, "name": label, "output": {"hook": hook}})

    if workflow.builds_image:
        script("pre_build", "Pre-build script")
        if workflow.scan_detect_secrets or workflow.scan_trivy or workflow.scan_sonarqube:
            stages.append({"kind": StageKind.SCAN, "name": "Security scan"})
        stages.append({"kind": StageKind.BUILD, "name": "Build"})
        script("post_build", "Post-build script")
        stages.append({"kind": StageKind.PUSH, "name": "Push"})
        script("post_push", "Post-push script")
    if workflow.deploys:
        for step in workflow.deploy_steps.select_related("environment"):
            stages.append(
                {
                    "kind": StageKind.DEPLOY,
                    "name": f"Deploy {step.environment.name}",
                    "environment": step.environment,
                    "workflow_environment": step,
                }
            )
        script("post_deploy", "Post-deploy script")
    return stages


def check_can_run(user: User | None, workflow: Workflow, doing: str = "Running a workflow") -> None:
    """The one check before anything of `workflow` runs, whatever the door: the API, the page
    and the CLI (`triggers.runs.check_run_workflow`), a webhook delivery and its redelivery (`user` None: the
    signature is the authority), a re-run, a rollback, and each occurrence of a Cron CD job.

    A user needs "Change workflow" and membership of the project (PermissionDenied). The stored
    definition must still be valid, its registry and environments must belong to the
    workflow's project, and its approvers must be members (`validate_for_run`: Invalid keyed
    by field path, which the API answers with 400)."""
    if user is not None:
        if not user.has_perm(CHANGE):
            raise PermissionDenied(f'{doing} needs the "Change workflow" permission.')
        if not is_member(user, workflow.service.project):
            raise PermissionDenied("You are not a member of this project.")
    validate_for_run(workflow)


class Carried(TypedDict):
    """What a new run takes over from the run it repeats (a re-run, a rollback's source)."""

    ref_kind: str
    branch: str
    tag: str
    actor_login: str
    actor_email: str


def carried_from(run: Execution) -> Carried:
    """The ref's kind, branch and tag of `run`, and who pushed its commit: who pushed still may
    not approve the new run's deploy (approvals.services). Keywords of do_create_execution."""
    return Carried(
        ref_kind=run.ref_kind or RefKind.BRANCH_OR_TAG,
        branch=run.branch,
        tag=run.tag,
        actor_login=run.actor_login,
        actor_email=run.actor_email,
    )


def do_create_execution(
    workflow: Workflow,
    *,
    ref: str,
    trigger: str,
    triggered_by: User | None = None,
    trigger_detail: str = "",
    image: str = "",
    rerun_of: Execution | None = None,
    ref_kind: str = RefKind.BRANCH_OR_TAG,
    branch: str | None = None,
    tag: str | None = None,
    commit_sha: str = "",
    actor_login: str = "",
    actor_email: str = "",
    image_digest: str = "",
    only_environment: Environment | None = None,
    stage_output: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> Execution:
    """Creates a Pending execution with its planned stages and enqueues it after commit.
    Callers have passed `check_can_run` first.

    `ref` is what Source checks out and `ref_kind` what it is, as its origin said (RefKind);
    `branch` and `tag` default to `ref` when that is their kind. A webhook also knows the exact
    commit, and Source then checks out that commit even if the branch has moved on since.
    Who pushed it (`actor_login`, `actor_email`) is written here, at creation: approvals read
    it to refuse self-approval. A rollback (`only_environment`) passes the digest it redeploys
    and `stage_output` for its one deploy stage."""
    if branch is None:
        branch = ref if ref_kind == RefKind.BRANCH else ""
    if tag is None:
        tag = ref if ref_kind == RefKind.TAG else ""
    if ref_kind == RefKind.COMMIT and not commit_sha:
        commit_sha = ref
    for _ in range(5):
        try:
            with transaction.atomic():
                last = workflow.executions.aggregate(n=Max("number"))["n"] or 0
                execution = Execution.objects.create(
                    workflow=workflow,
                    number=last + 1,
                    trigger=trigger,
                    triggered_by=triggered_by,
                    trigger_detail=trigger_detail,
                    ref=ref,
                    ref_kind=ref_kind,
                    branch=branch,
                    tag=tag,
                    commit_sha=commit_sha,
                    actor_login=actor_login,
                    actor_email=actor_email,
                    image=image,
                    image_digest=image_digest,
                    rerun_of=rerun_of,
                )
                for position, stage in enumerate(plan_stages(workflow, only_environment)):
                    if stage_output:
                        stage["output"] = {**stage.get("output", {}), **stage_output}
                    StageRun.objects.create(execution=execution, position=position, **stage)
                StatusChange.objects.create(
                    execution=execution,
                    from_status=S.PENDING,
                    to_status=S.PENDING,
                    reason=f"created by {trigger}",
                )
                if enqueue:
                    transaction.on_commit(partial(enqueue_execution, execution.pk))
                transaction.on_commit(
                    partial(publish_project, execution.pk, "created", workflow.service.project_id)
                )
            return execution
        except IntegrityError:
            continue  # another run took the same number at the same moment
    raise RuntimeError("could not allocate an execution number")


def check_terminate(user: User | None, execution: Execution) -> Execution:
    """The Terminate button and `POST /api/executions/<id>/terminate/`: needs "Change
    workflow" (PermissionDenied), then `do_terminate`."""
    if user is not None and not user.has_perm(CHANGE):
        raise PermissionDenied('Terminating a run needs the "Change workflow" permission.')
    return do_terminate(execution, by=user)


def do_terminate(execution: Execution, by: User | str | None = None) -> Execution:
    """Pending and waiting runs have nothing running and end Terminated at once; a Running one
    goes to Terminating and its worker stops the engine work (executions.engine). A Running run
    no worker holds yet (resumed after a gate, not claimed) has nothing running either: it
    passes Terminating and ends Terminated at once, as no worker would ever claim it."""
    who = f"by {by}" if by else "by the system"
    execution.refresh_from_db(fields=["status"])
    if execution.status == S.PENDING or execution.status in WAITING:
        with transaction.atomic():
            was_waiting = execution.status in WAITING
            do_end_run(
                execution,
                S.TERMINATED,
                f"Terminated {who} before it ran",
                later=StageStatus.TERMINATED,
            )
            if was_waiting:
                # Whatever the gate opened (an approval request) is closed too.
                for gate in registered_gates():
                    gate.on_run_ended(execution, f"run terminated {who}")
        return execution
    if execution.status == S.RUNNING:
        try:
            with transaction.atomic():
                _move(execution, S.TERMINATING, f"Termination requested {who}", unheld=True)
                return do_end_run(
                    execution,
                    S.TERMINATED,
                    f"Terminated {who} before a worker took it up",
                    later=StageStatus.TERMINATED,
                )
        except IllegalTransition:
            pass  # a worker holds it: the move below hands the stop to that worker
    return do_change_status(execution, S.TERMINATING, f"Termination requested {who}")


RERUN_NEEDS_CHECKOUT = {StageKind.SCRIPT, StageKind.SCAN, StageKind.BUILD}


def do_rerun(execution: Execution, by: User | None = None, from_failed: bool = False) -> Execution:
    """A new run of the same commit (trigger "rerun"), carrying the pusher over; with
    `from_failed`, the stages that succeeded before the failure are reused."""
    with transaction.atomic():
        rerun = do_create_execution(
            execution.workflow,
            ref=execution.commit_sha or execution.ref,
            commit_sha=execution.commit_sha,
            **carried_from(execution),
            trigger=Trigger.RERUN,
            triggered_by=by,
            trigger_detail=f"re-run of #{execution.number}"
            + (" from the failed stage" if from_failed else ""),
            rerun_of=execution,
        )
        if from_failed:
            reuse_succeeded_stages(execution, rerun, workspace_of(execution).exists())
    return rerun


def reuse_succeeded_stages(old: Execution, new: Execution, checkout_kept: bool) -> None:
    """Marks the new run's leading stages as done when the old run finished them, as long as
    what they produced is still there (a checkout the failed stage needs, for instance)."""
    old_stages = list(old.stages.order_by("position"))
    failed_at = next(
        (s.position for s in old_stages if s.status != StageStatus.SUCCEEDED), len(old_stages)
    )
    failed_kind = old_stages[failed_at].kind if failed_at < len(old_stages) else None
    if failed_kind in RERUN_NEEDS_CHECKOUT and not checkout_kept:
        return  # the checkout is gone: start from Source again

    new_stages = {s.position: s for s in new.stages.all()}
    produced: dict = {}
    for stage in old_stages[:failed_at]:
        counterpart = new_stages.get(stage.position)
        if counterpart is None or counterpart.kind != stage.kind:
            break  # the definition changed since: no safe reuse past this point
        StageRun.objects.filter(pk=counterpart.pk).update(
            status=StageStatus.SUCCEEDED,
            output={**stage.output, "reused_from": old.number},
            started_at=stage.started_at,
            finished_at=stage.finished_at,
            error="",
        )
        produced.update({k: v for k, v in stage.output.items() if k in EXECUTION_OUTPUTS})
    if produced:
        # What the reused stages produced (commit, image, digest) is the new run's too.
        Execution.objects.filter(pk=new.pk).update(**produced)
