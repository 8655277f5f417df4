"""Which deploy steps stop the run, and what happens when one is reached."""

from __future__ import annotations

from typing import TYPE_CHECKING

from executions.status import ExecutionStatus
from workflows.models import DeployMode, WorkflowEnvironment

if TYPE_CHECKING:
    from executions.models import Execution, StageRun


def waiting_status_for(step: WorkflowEnvironment) -> str | None:
    if step.required_approvals > 0:
        return ExecutionStatus.APPROVAL_PENDING
    if step.mode == DeployMode.MANUAL:
        return ExecutionStatus.DEPLOYMENT_PENDING
    return None


def on_gate_reached(execution: Execution, stage: StageRun, waiting: str) -> None:
    """An approval gate opens a request and notifies its approvers; a manual deploy only waits
    for someone with "change workflow" to press Deploy."""
    if waiting == ExecutionStatus.APPROVAL_PENDING:
        from approvals.services import do_open_request

        do_open_request(execution, stage)
