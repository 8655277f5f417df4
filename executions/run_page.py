"""What the run page shows and offers: the run's state with stage timings, and the actions the
user may take now. The page, its websocket and the tests read the same functions, so a button
appears exactly when the service function behind it would accept the click."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.urls import reverse

from approvals.models import RequestStatus
from executions.models import Execution, StageRun
from executions.scheduler import place_of
from executions.status import STAGE_TERMINAL, TERMINAL, WAITING, ExecutionStatus, StageStatus
from workflows.permissions import APPROVE, CHANGE

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

S = ExecutionStatus

# Runs whose failed stage can be the start of a new run (triggers.runs.check_rerun).
RERUN_FROM_FAILED = frozenset(
    {S.FAILED, S.ERROR, S.TERMINATED, S.TERMINATION_FAILED, S.APPROVAL_REJECTED}
)


def run_actions(execution: Execution, stages: list[dict], *, can_change: bool) -> list[str]:
    """Actions the run's status allows for a user with (or without) "Change workflow", in the
    order the page shows them: `deploy`, `terminate`, `rerun`, `rerun-failed`.

    - terminate: the run has not ended and is not already terminating (check_terminate);
    - deploy: the run waits at a manual environment, Deployment Pending (check_deploy);
    - rerun: the run has ended (check_rerun);
    - rerun-failed: it ended without succeeding and one of its stages did not succeed.
    Approve and reject are on the approval card: they need "Approve pipeline" and a designated
    approver, not "Change workflow"."""
    if not can_change:
        return []
    status = execution.status
    actions: list[str] = []
    if status == S.DEPLOYMENT_PENDING:
        actions.append("deploy")
    if status not in TERMINAL and status != S.TERMINATING:
        actions.append("terminate")
    if status in TERMINAL:
        actions.append("rerun")
        if status in RERUN_FROM_FAILED and any(
            s["status"] != StageStatus.SUCCEEDED for s in stages
        ):
            actions.append("rerun-failed")
    return actions


def stage_rows(execution: Execution) -> list[dict]:
    """The run's stages in order: id, name, kind, status, error, environment name, hook (for
    scripts), started_at/finished_at (ISO 8601) and duration_seconds (None until it ends)."""
    rows = []
    stages = StageRun.objects.filter(execution_id=execution.pk).select_related("environment")
    for stage in stages.order_by("position"):
        rows.append(
            {
                "id": stage.pk,
                "position": stage.position,
                "name": stage.name,
                "kind": stage.kind,
                "status": stage.status,
                "status_display": stage.get_status_display(),
                "error": stage.error,
                "environment": stage.environment.name if stage.environment else "",
                "hook": (stage.output or {}).get("hook", ""),
                "reused_from": (stage.output or {}).get("reused_from"),
                "started_at": stage.started_at.isoformat() if stage.started_at else None,
                "finished_at": stage.finished_at.isoformat() if stage.finished_at else None,
                "duration_seconds": stage.duration_seconds,
                "ended": stage.status in STAGE_TERMINAL,
            }
        )
    return rows


def run_state(execution: Execution, user: User | AnonymousUser) -> dict[str, Any]:
    """Everything about the run that changes while it runs, as the websocket's `status` message
    and the page's first state: status, reason, ref name, commit, image, timings, stages,
    the actions this user may take, the ids of its approval requests (not cancelled) and, for a
    queued run, its `queue` place (`position`, 1 starts next, and the `reason` it waits)."""

    stages = stage_rows(execution)
    place = place_of(execution)
    # Decided requests stay on the page (who approved, when); cancelled ones do not.
    open_requests = list(
        execution.approval_requests.exclude(status=RequestStatus.CANCELLED)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
    )
    return {
        "id": execution.pk,
        "status": execution.status,
        "status_display": execution.get_status_display(),
        "reason": execution.status_reason,
        "ref_name": execution.ref_name,
        "ref_kind": execution.ref_kind,
        "commit_sha": execution.commit_sha,
        "commit_message": execution.commit_message,
        "image": execution.image,
        "image_digest": execution.image_digest,
        "created_at": execution.created_at.isoformat() if execution.created_at else None,
        "started_at": execution.started_at.isoformat() if execution.started_at else None,
        "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
        "duration_seconds": execution.duration_seconds,
        "ended": execution.status in TERMINAL,
        "waiting": execution.status in WAITING,
        "stages": stages,
        "actions": run_actions(execution, stages, can_change=user.has_perm(CHANGE)),
        "can_approve": user.has_perm(APPROVE),
        "approval_requests": open_requests,
        "queue": None if place is None else {"position": place.position, "reason": place.reason},
    }


def page_config(execution: Execution, user: User | AnonymousUser) -> dict[str, Any]:
    """The run page's first state (the JSON its script starts from): who and what started the
    run, links, and `run_state`."""

    workflow = execution.workflow
    rerun_of = execution.rerun_of
    return {
        "id": execution.pk,
        "number": execution.number,
        "title": f"{workflow.service.project.name} / {workflow.service.name} / {workflow.name}",
        "workflowUrl": reverse("workflow-page", args=[workflow.pk]),
        "serviceWhereUrl": reverse("service-where", args=[workflow.service_id]),
        "trigger": execution.get_trigger_display(),
        "triggeredBy": execution.triggered_by.username if execution.triggered_by else "",
        "triggerDetail": execution.trigger_detail,
        "rerunOf": None
        if rerun_of is None
        else {"number": rerun_of.number, "url": reverse("execution-page", args=[rerun_of.pk])},
        "wsPath": f"/ws/executions/{execution.pk}/",
        "logUrl": reverse("execution-logs", args=[execution.pk]) + "?as=text",
        "apiUrl": reverse("execution-detail", args=[execution.pk]),
        "reportsUrl": reverse("execution-reports", args=[execution.pk]),
        "approvalsUrl": reverse("approval-list"),
        "state": run_state(execution, user),
    }
