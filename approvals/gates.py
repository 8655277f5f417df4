"""Which deploy steps stop the run, and what happens when one is reached."""

from __future__ import annotations

from executions.status import ExecutionStatus
from workflows.models import DeployMode, WorkflowEnvironment


def waiting_status_for(step: WorkflowEnvironment) -> str | None:
    if step.required_approvals > 0:
        return ExecutionStatus.APPROVAL_PENDING
    if step.mode == DeployMode.MANUAL:
        return ExecutionStatus.DEPLOYMENT_PENDING
    return None


def on_gate_reached(execution, stage, waiting: str) -> None:
    """Notifications and approval requests come with the approvals issue; nothing to do yet."""
