"""Every change to an execution goes through here: `check_*` validates, `do_*` writes.

Status moves are conditional UPDATEs (`WHERE status = <expected>`), so two processes can never
both make the same move: the second finds the row count 0 and is refused.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from executions.masking import mask_text
from executions.models import Execution, RefKind, StageKind, StageRun, StatusChange, Trigger
from executions.status import TERMINAL, WAITING, ExecutionStatus, StageStatus, can_move
from workflows.models import Workflow
from workflows.permissions import CHANGE, is_member
from workflows.services import validate_for_run

S = ExecutionStatus


class IllegalTransition(Exception):
    """A status move the machine does not allow, or that another process made first."""

    def __init__(self, execution: Execution, current: str, new: str):
        self.execution = execution
        self.current = current
        self.new = new
        super().__init__(f"{execution} cannot move from {S(current).label} to {S(new).label}")


def do_change_status(
    execution: Execution, new: str, reason: str = "", claim: dict | None = None
) -> Execution:
    """Moves an execution to `new` if the machine allows it from its stored status. The reason
    is masked like the log (before it is cut to 500 characters): it is shown everywhere.
    `claim` (`worker_id`, `heartbeat_at`) is written by the same conditional UPDATE, so a worker
    takes a Pending run in one statement (executions.scheduler.claim_run)."""
    reason = mask_text(execution.pk, reason)[:500]
    with transaction.atomic():
        current = Execution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
        if current is None or not can_move(current, new):
            raise IllegalTransition(execution, current or execution.status, new)
        now = timezone.now()
        fields = {"status": new, "status_changed_at": now, "status_reason": reason}
        if new == S.RUNNING and execution.started_at is None:
            fields["started_at"] = now
        if new in TERMINAL:
            fields["finished_at"] = now
        if new in TERMINAL or new in WAITING:
            # Nobody holds a waiting run: whichever worker resumes it claims it anew.
            fields["worker_id"] = ""
        fields.update(claim or {})
        updated = Execution.objects.filter(pk=execution.pk, status=current).update(**fields)
        if updated != 1:
            raise IllegalTransition(execution, current, new)
        StatusChange.objects.create(
            execution=execution, from_status=current, to_status=new, reason=reason
        )
    for field, value in fields.items():
        setattr(execution, field, value)
    from executions.live import publish_status

    transaction.on_commit(lambda: publish_status(execution))
    return execution


def do_change_stage_status(stage: StageRun, new: str, error: str = "", **output) -> StageRun:
    """Moves a stage run to `new`; its error is masked like the log before it is cut to 500
    characters and stored."""
    from executions.status import STAGE_TRANSITIONS

    error = mask_text(stage.execution_id, error)[:500]
    current = StageRun.objects.filter(pk=stage.pk).values_list("status", flat=True).first()
    if new not in STAGE_TRANSITIONS.get(current, frozenset()):
        raise ValueError(f"stage {stage.name} cannot move from {current} to {new}")
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
    if StageRun.objects.filter(pk=stage.pk, status=current).update(**fields) != 1:
        raise ValueError(f"stage {stage.name} changed under us")
    for field, value in fields.items():
        setattr(stage, field, value)
    from executions.live import publish_stage

    transaction.on_commit(lambda: publish_stage(stage))
    return stage


def plan_stages(workflow: Workflow, only_environment=None) -> list[dict]:
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


def check_can_run(user, workflow: Workflow, doing: str = "Running a workflow") -> None:
    """The one check before anything of `workflow` runs, whatever the door: the API, the page
    and the CLI (`check_run_workflow`), a webhook delivery and its redelivery (`user` None: the
    signature is the authority), a re-run, a rollback, and each occurrence of a Cron CD job.

    A user needs "Change workflow" and membership of the project (PermissionDenied). The stored
    definition must still be valid, its registry and environments must belong to the
    workflow's project, and its approvers must be members (`validate_for_run`: a DRF
    ValidationError keyed by field path, which the API answers with 400)."""
    if user is not None:
        if not user.has_perm(CHANGE):
            raise PermissionDenied(f'{doing} needs the "Change workflow" permission.')
        if not is_member(user, workflow.service.project):
            raise PermissionDenied("You are not a member of this project.")
    validate_for_run(workflow)


def check_run_workflow(
    user,
    workflow: Workflow,
    *,
    ref: str = "",
    ref_kind: str = "",
    trigger: str = Trigger.MANUAL,
    trigger_detail: str = "",
    image: str = "",
    enqueue: bool = True,
) -> Execution:
    """Checks the user may run the workflow and that its definition is still valid
    (`check_can_run`), then creates the run (and hands it to the workers unless the caller runs
    it itself).

    `ref_kind` is the field the user filled in (RefKind); without a ref, the run builds the
    service's default branch."""
    check_can_run(user, workflow)
    if not ref:
        ref, ref_kind = workflow.service.default_branch, RefKind.BRANCH
    return do_create_execution(
        workflow,
        ref=ref,
        ref_kind=ref_kind or RefKind.BRANCH_OR_TAG,
        trigger=trigger,
        triggered_by=user,
        trigger_detail=trigger_detail,
        image=image,
        enqueue=enqueue,
    )


def do_create_execution(
    workflow: Workflow,
    *,
    ref: str,
    trigger: str,
    triggered_by=None,
    trigger_detail: str = "",
    image: str = "",
    rerun_of: Execution | None = None,
    ref_kind: str = RefKind.BRANCH_OR_TAG,
    branch: str | None = None,
    tag: str | None = None,
    commit_sha: str = "",
    actor_login: str = "",
    actor_email: str = "",
    only_environment=None,
    enqueue: bool = True,
) -> Execution:
    """Creates a Pending execution with its planned stages and enqueues it after commit.
    Callers have passed `check_can_run` first.

    `ref` is what Source checks out and `ref_kind` what it is, as its origin said (RefKind);
    `branch` and `tag` default to `ref` when that is their kind. A webhook also knows the exact
    commit, and Source then checks out that commit even if the branch has moved on since."""
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
                    rerun_of=rerun_of,
                )
                for position, stage in enumerate(plan_stages(workflow, only_environment)):
                    StageRun.objects.create(execution=execution, position=position, **stage)
                StatusChange.objects.create(
                    execution=execution,
                    from_status=S.PENDING,
                    to_status=S.PENDING,
                    reason=f"created by {trigger}",
                )
                from executions.queue import enqueue_execution

                if enqueue:
                    transaction.on_commit(lambda pk=execution.pk: enqueue_execution(pk))
            return execution
        except IntegrityError:
            continue  # another run took the same number at the same moment
    raise RuntimeError("could not allocate an execution number")


def check_terminate(user, execution: Execution) -> Execution:
    if user is not None and not user.has_perm(CHANGE):
        raise PermissionDenied('Terminating a run needs the "Change workflow" permission.')
    return do_terminate(execution, by=user)


def do_terminate(execution: Execution, by=None) -> Execution:
    """Pending and waiting runs, and Running ones no worker holds yet (queued after a gate),
    have nothing running and end Terminated at once; a Running one goes to Terminating and its
    worker stops the engine work (executions.engine)."""
    who = f"by {by}" if by else "by the system"
    execution.refresh_from_db(fields=["status"])
    if execution.status == S.PENDING or execution.status in WAITING:
        with transaction.atomic():
            was_waiting = execution.status in WAITING
            do_change_status(execution, S.TERMINATED, f"Terminated {who} before it ran")
            if was_waiting:
                from approvals.services import do_cancel_requests

                do_cancel_requests(execution, f"run terminated {who}")
            for stage in execution.stages.exclude(status__in=[StageStatus.SUCCEEDED]):
                if stage.status in (StageStatus.PENDING, StageStatus.WAITING):
                    do_change_stage_status(stage, StageStatus.TERMINATED)
        return execution
    with transaction.atomic():
        # Resumed after a gate but still queued (no worker holds it): nothing runs either. The
        # row lock (PostgreSQL; SQLite writes one at a time) keeps a worker from taking it
        # meanwhile, and its claim then finds it no longer Running.
        row = Execution.objects.select_for_update().filter(pk=execution.pk)
        status, holder = row.values_list("status", "worker_id").first() or ("", "")
        if status == S.RUNNING and not holder:
            do_change_status(execution, S.TERMINATING, f"Termination requested {who}")
            do_change_status(execution, S.TERMINATED, f"Terminated {who} before a worker took it")
            for stage in execution.stages.filter(
                status__in=[StageStatus.PENDING, StageStatus.WAITING]
            ):
                do_change_stage_status(stage, StageStatus.TERMINATED)
            return execution
    return do_change_status(execution, S.TERMINATING, f"Termination requested {who}")


RERUN_NEEDS_CHECKOUT = {StageKind.SCRIPT, StageKind.SCAN, StageKind.BUILD}


def check_rerun(user, execution: Execution, from_failed: bool = False) -> Execution:
    """Runs the same commit again. `from_failed` keeps the stages that succeeded before the
    failure (their outputs, the checkout and the built image) and starts at the failed one."""
    check_can_run(user, execution.workflow, "Re-running")
    if not execution.is_terminal:
        raise IllegalTransition(execution, execution.status, S.PENDING)
    return do_rerun(execution, by=user, from_failed=from_failed)


def do_rerun(execution: Execution, by=None, from_failed: bool = False) -> Execution:
    from executions.engine import workspace_of

    with transaction.atomic():
        rerun = do_create_execution(
            execution.workflow,
            ref=execution.commit_sha or execution.ref,
            ref_kind=execution.ref_kind or RefKind.BRANCH_OR_TAG,
            branch=execution.branch,
            tag=execution.tag,
            commit_sha=execution.commit_sha,
            # Who pushed the commit still may not approve its deploy (approvals.services).
            actor_login=execution.actor_login,
            actor_email=execution.actor_email,
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
    from executions.engine import EXECUTION_OUTPUTS

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
