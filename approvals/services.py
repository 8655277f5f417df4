"""Approval gates and manual deploys: `check_*` validates (permission, designation, state),
`do_*` writes and resumes the run. Decisions are counted under a row lock on the request, so
two approvers deciding at the same moment give exactly one outcome."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.models import (
    Approval,
    ApprovalEvent,
    ApprovalRequest,
    Decision,
    EventKind,
    RequestStatus,
)
from atmosly.errors import Conflict, Invalid
from executions.masking import mask_text
from executions.models import Execution, StageRun
from executions.releases import current_release, manifest_diff
from executions.services import do_end_run, do_resume
from executions.status import ExecutionStatus, StageStatus
from integrations.models import Outcome, WebhookDelivery
from workflows.models import WorkflowEnvironment
from workflows.permissions import APPROVE, CHANGE, visible_projects

logger = logging.getLogger(__name__)
S = ExecutionStatus


def record_event(
    kind: str,
    *,
    execution: Execution | None = None,
    request: ApprovalRequest | None = None,
    step: WorkflowEnvironment | None = None,
    user: User | None = None,
    comment: str = "",
    detail: dict[str, Any] | None = None,
) -> ApprovalEvent:
    """The one writer of the approval audit trail (EventKind: requested, approved, rejected,
    granted, expired, cancelled, deploy triggered, approvers changed). The step defaults to the
    request's."""
    if step is None and request is not None:
        step = request.workflow_environment
    return ApprovalEvent.objects.create(
        execution=execution,
        request=request,
        workflow_environment=step,
        kind=kind,
        user=user,
        comment=comment,
        detail=detail or {},
    )


def designated_approvers(step: WorkflowEnvironment) -> list[User]:
    """Active members of the workflow's project, designated directly or through a group, who
    hold "approve pipeline" (superusers count as members of every project)."""
    User = get_user_model()
    candidates = (
        User.objects.filter(
            Q(pk__in=step.approver_users.values("pk")) | Q(groups__in=step.approver_groups.all()),
            is_active=True,
        )
        .filter(Q(is_superuser=True) | Q(projects=step.workflow.service.project_id))
        .distinct()
    )
    return [user for user in candidates if user.has_perm(APPROVE)]


def is_self_approval(user: User, execution: Execution) -> bool:
    """Whether `user` started this run or pushed its code. The code decides, not the button:
    whoever's push brought the commit is found on every run of the service at that commit
    (webhook runs, and re-runs and rollbacks, which carry the pusher over), so a re-run,
    re-run from the failed stage, redeliver, rollback or API run of the same commit changes
    nothing; whoever started a run this one repeats counts as its starter. Pushers are matched by login or e-mail (no Django user may exist for them)."""
    run: Execution | None = execution
    seen: set[int] = set()
    while run is not None and run.pk not in seen:  # this run and the runs it repeats
        if run.triggered_by_id == user.pk:
            return True
        seen.add(run.pk)
        run = run.rerun_of
    runs = Execution.objects.filter(pk=execution.pk)
    if execution.commit_sha:
        runs = Execution.objects.filter(
            workflow__service_id=execution.workflow.service_id, commit_sha=execution.commit_sha
        )
    pushers: set[str] = set()
    for login, email in runs.values_list("actor_login", "actor_email"):
        pushers |= {login.lower(), email.lower()}
    if execution.commit_sha:
        senders = WebhookDelivery.objects.filter(
            project_id=execution.workflow.service.project_id, commit_sha=execution.commit_sha
        ).exclude(outcome=Outcome.REJECTED)
        pushers |= {login.lower() for login in senders.values_list("sender", flat=True)}
    return bool((pushers - {""}) & ({user.username.lower(), (user.email or "").lower()} - {""}))


def do_open_request(execution: Execution, stage: StageRun) -> ApprovalRequest:
    """Called when a run reaches a gate that needs approval."""
    step = stage.workflow_environment
    assert step is not None  # only a deploy stage of a workflow step reaches a gate
    request = ApprovalRequest.objects.create(
        stage_run=stage,
        execution=execution,
        workflow_environment=step,
        required=step.required_approvals,
        expires_at=timezone.now() + timedelta(hours=step.approval_expiry_hours),
    )
    approvers = designated_approvers(step)
    record_event(
        EventKind.REQUESTED,
        execution=execution,
        request=request,
        detail={"required": request.required, "approvers": sorted(u.username for u in approvers)},
    )
    transaction.on_commit(lambda: notify(request, approvers, "requested"))
    return request


def notify(request: ApprovalRequest, users: Iterable[User], what: str) -> None:
    execution = request.execution
    environment = request.stage_run.environment.name if request.stage_run.environment else ""
    link = f"{settings.SITE_URL}/api/approvals/{request.pk}/"
    if what == "requested":
        subject = f"[Workflows] Approval needed: {execution} to {environment}"
        body = (
            f"{execution} (commit {execution.commit_sha[:12] or execution.ref}) is waiting for "
            f"{request.required} approval(s) to deploy to {environment}.\n"
            f"It expires at {request.expires_at:%Y-%m-%d %H:%M} UTC.\n\n{link}\n"
        )
    else:
        subject = f"[Workflows] Approval expired: {execution} to {environment}"
        body = f"Nobody decided in time; {execution} ended Approval Rejected (expired).\n\n{link}\n"
    recipients = sorted({u.email for u in users if u.email})
    if recipients:
        subject, body = mask_text(execution.pk, subject), mask_text(execution.pk, body)
        try:
            send_mail(subject, body, None, recipients)
        except Exception:  # a mail server down must not lose the decision or the run
            logger.exception("could not send approval mail for %s", request)


def decide_refusal(
    user: User, request: ApprovalRequest, approvers: list[User] | None = None
) -> PermissionDenied | Conflict | None:
    """Why `user` may not decide on `request` now (the error check_decide raises), or None."""
    if not user.has_perm(APPROVE):
        return PermissionDenied('Deciding on approvals needs the "Approve pipeline" permission.')
    step = request.workflow_environment
    if step is None:
        return Conflict("The workflow's deploy step was removed; this request cannot be decided.")
    if user not in (approvers if approvers is not None else designated_approvers(step)):
        return PermissionDenied(f'You are not a designated approver for "{step.environment.name}".')
    if not step.allow_self_approval and is_self_approval(user, request.execution):
        return PermissionDenied(
            "You started or pushed this run; someone else must approve it "
            "(self-approval is not allowed for this environment)."
        )
    return None


def check_decide(
    user: User, request: ApprovalRequest, decision: str, comment: str = ""
) -> ApprovalRequest:
    refusal = decide_refusal(user, request)
    if refusal is not None:
        raise refusal
    if decision == Decision.REJECT and not comment.strip():
        raise Invalid({"comment": "say why you reject the deployment"})
    return do_decide(user, request, decision, comment)


def do_decide(user: User, request: ApprovalRequest, decision: str, comment: str) -> ApprovalRequest:
    with transaction.atomic():
        # The lock serializes deciders (PostgreSQL); SQLite's IMMEDIATE transactions already do.
        request = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
        now = timezone.now()
        if request.status == RequestStatus.OPEN and request.expires_at <= now:
            do_expire(request)
            raise Conflict("This approval request has expired.")
        if request.status != RequestStatus.OPEN:
            raise Conflict(
                f"This approval request is already {request.get_status_display().lower()}."
            )
        execution = Execution.objects.get(pk=request.execution_id)
        if execution.status != S.APPROVAL_PENDING:
            raise Conflict(
                f"The run is {execution.get_status_display()}, not waiting for approval."
            )
        try:
            with transaction.atomic():
                Approval.objects.create(
                    request=request,
                    stage_run=request.stage_run,
                    user=user,
                    decision=decision,
                    comment=comment,
                )
        except IntegrityError as exc:
            raise Conflict("You have already decided on this request.") from exc
        kind = EventKind.APPROVED if decision == Decision.APPROVE else EventKind.REJECTED
        record_event(kind, execution=execution, request=request, user=user, comment=comment)
        if decision == Decision.REJECT:
            reason = f"Rejected by {user.username}: {comment}".strip()
            close(request, RequestStatus.REJECTED, reason)
            end_waiting_run(execution, request.stage_run, S.APPROVAL_REJECTED, reason)
        else:
            approvals = request.decisions.filter(decision=Decision.APPROVE).count()
            if approvals >= request.required:
                close(
                    request, RequestStatus.APPROVED, f"{approvals} of {request.required} approvals"
                )
                record_event(EventKind.GRANTED, execution=execution, request=request)
                do_resume(execution, f"{request.stage_run.name} approved")
    request.refresh_from_db()
    return request


def close(request: ApprovalRequest, status: str, reason: str) -> None:
    updated = ApprovalRequest.objects.filter(pk=request.pk, status=RequestStatus.OPEN).update(
        status=status, reason=reason[:500], decided_at=timezone.now()
    )
    if updated != 1:
        raise Conflict("This approval request was decided meanwhile.")


def end_waiting_run(execution: Execution, stage: StageRun, status: str, reason: str) -> None:
    """A rejected or expired gate ends the run: its deploy stage fails, the later ones skip."""
    do_end_run(
        execution,
        status,
        reason,
        stage=stage,
        stage_status=StageStatus.FAILED,
        later=StageStatus.SKIPPED,
    )


def do_expire(request: ApprovalRequest) -> None:
    execution = request.execution
    close(request, RequestStatus.EXPIRED, "expired")
    record_event(EventKind.EXPIRED, execution=execution, request=request)
    if execution.status == S.APPROVAL_PENDING:
        end_waiting_run(execution, request.stage_run, S.APPROVAL_REJECTED, "expired")
    approvers = (
        designated_approvers(request.workflow_environment) if request.workflow_environment else []
    )
    transaction.on_commit(lambda: notify(request, approvers, "expired"))


def expire_due_requests() -> int:
    """Ends the runs whose approval request ran out of time (called every few seconds by the
    workers' recovery loop)."""
    count = 0
    due = ApprovalRequest.objects.filter(status=RequestStatus.OPEN, expires_at__lte=timezone.now())
    for request in due.select_related("execution", "stage_run"):
        try:
            with transaction.atomic():
                do_expire(request)
        except Conflict:
            continue  # decided meanwhile
        count += 1
    return count


def do_cancel_requests(execution: Execution, reason: str) -> None:
    """A terminated run's open requests are closed so nobody can decide on them."""
    for request in execution.approval_requests.filter(status=RequestStatus.OPEN):
        close(request, RequestStatus.CANCELLED, reason)
        record_event(EventKind.CANCELLED, execution=execution, request=request, comment=reason)


def check_deploy(user: User, execution: Execution) -> Execution:
    """The Deploy button of a manual environment: Deployment Pending → Running."""
    if not user.has_perm(CHANGE):
        raise PermissionDenied('Deploying needs the "Change workflow" permission.')
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(pk=execution.pk)
        if execution.status != S.DEPLOYMENT_PENDING:
            raise Conflict(
                f"The run is {execution.get_status_display()}, not waiting for a deploy."
            )
        stage = execution.stages.filter(status=StageStatus.WAITING).first()
        record_event(
            EventKind.DEPLOY_TRIGGERED,
            execution=execution,
            user=user,
            step=stage.workflow_environment if stage else None,
        )
        do_resume(execution, f"Deploy triggered by {user.username}")
    return execution


def record_approvers_changed(
    step: WorkflowEnvironment, before: dict[str, Any], after: dict[str, Any], user: User | None
) -> None:
    """Audits a change of designated approvers, also on every run waiting at that step."""
    detail = {"before": before, "after": after, "environment": step.environment.name}
    record_event(EventKind.APPROVERS_CHANGED, step=step, user=user, detail=detail)
    for request in ApprovalRequest.objects.filter(
        workflow_environment=step, status=RequestStatus.OPEN
    ):
        record_event(
            EventKind.APPROVERS_CHANGED,
            execution=request.execution,
            request=request,
            step=step,
            user=user,
            detail=detail,
        )


def on_approvers_changed(
    sender: object,
    *,
    step: WorkflowEnvironment,
    before: dict[str, Any],
    after: dict[str, Any],
    user: User | None,
    **kwargs: Any,
) -> None:
    """Receiver of `workflows.signals.approvers_changed`: audits the change."""
    record_approvers_changed(step, before, after, user)


def waiting_for(
    user: User | AnonymousUser | None,
) -> list[ApprovalRequest] | QuerySet[ApprovalRequest]:
    """Open requests this user may decide on now (the in-app "waiting for me" list)."""
    if not isinstance(user, User) or not user.has_perm(APPROVE):  # None, anonymous: none
        return ApprovalRequest.objects.none()
    candidates = (
        ApprovalRequest.objects.filter(
            status=RequestStatus.OPEN,
            execution__status=S.APPROVAL_PENDING,
        )
        .filter(
            Q(workflow_environment__approver_users=user)
            | Q(workflow_environment__approver_groups__in=user.groups.all())
        )
        .exclude(decisions__user=user)
        .filter(execution__workflow__service__project__in=visible_projects(user))
        .distinct()
        .select_related(
            "execution__workflow__service__project",
            "stage_run__environment",
            "workflow_environment",
        )
    )
    return [
        r
        for r in candidates
        # A step deleted since (SET_NULL) allows no self-approval.
        if (r.workflow_environment is not None and r.workflow_environment.allow_self_approval)
        or not is_self_approval(user, r.execution)
    ]


def approval_card(user: User, request: ApprovalRequest) -> dict[str, Any]:
    """What an approver needs to decide, for the run page's approval card:

    - `environment`, `status`, `required` (N), `approvers` (the M designated approvers'
      usernames), `approvals` (count), `decisions` [{user, decision, comment, at}],
      `expires_at` (ISO 8601);
    - `image`, `image_digest` of the run; `current` (the release the environment runs now:
      id, image, image_digest, commit_sha, deployed_by, created_at) or None;
    - `commits`: the run's commits since `current`'s commit, newest first, from the history
      Source stored ({sha, author, email, date, subject}); `commits_complete` is false when the
      current release's commit is not within that history (more commits, or another branch);
    - `manifest_diff`: unified diff of the Kubernetes manifests (executions.releases);
    - `scans`: {scanner: severity summary} of the run's security scan;
    - `can_decide` and `refusal` (why not, in words) for `user`."""

    execution, stage = request.execution, request.stage_run
    step = request.workflow_environment
    approvers = designated_approvers(step) if step else []
    current = current_release(execution.workflow, stage.environment) if stage.environment else None
    history: list[dict] = []
    for earlier in execution.stages.order_by("position"):
        history = (earlier.output or {}).get("commits") or history
    commits, complete = [], current is None or not current.commit_sha
    for commit in history:
        if current is not None and commit["sha"] == current.commit_sha:
            complete = True
            break
        commits.append(commit)
    refusal = decide_refusal(user, request, approvers)
    if refusal is None and request.status != RequestStatus.OPEN:
        refusal = Conflict(f"This request is {request.get_status_display().lower()}.")
    if refusal is None and any(d.user_id == user.pk for d in request.decisions.all()):
        refusal = Conflict("You have decided on this request already.")
    scans: dict = {}
    for report in execution.reports.all():
        scans[report.kind] = report.summary
    return {
        "id": request.pk,
        "environment": stage.environment.name if stage.environment else "",
        "status": request.status,
        "required": request.required,
        "approvers": sorted(u.username for u in approvers),
        "approvals": sum(1 for d in request.decisions.all() if d.decision == Decision.APPROVE),
        "decisions": [
            {
                "user": d.user.username,
                "decision": d.decision,
                "comment": d.comment,
                "at": d.created_at.isoformat(),
            }
            for d in request.decisions.select_related("user").order_by("created_at")
        ],
        "expires_at": request.expires_at.isoformat(),
        "image": execution.image,
        "image_digest": execution.image_digest,
        "commit_sha": execution.commit_sha,
        "current": None
        if current is None
        else {
            "id": current.pk,
            "image": current.image,
            "image_digest": current.image_digest,
            "commit_sha": current.commit_sha,
            "deployed_by": current.deployed_by.username if current.deployed_by else "",
            "created_at": current.created_at.isoformat(),
        },
        "commits": commits,
        "commits_complete": complete,
        "manifest_diff": manifest_diff(execution, stage, current),
        "scans": scans,
        "can_decide": refusal is None,
        "refusal": "" if refusal is None else str(refusal),
    }
