"""The approvals app's gate: which deploy steps stop the run, and what happens when one is
reached, when a parked run is terminated, and when a wait runs out of time. Registered with
the engine's gate registry (`executions.gates`) in `ApprovalsConfig.ready`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from approvals.services import do_cancel_requests, do_open_request, expire_due_requests
from executions.models import Execution, StageRun
from executions.status import ExecutionStatus
from workflows.models import DeployMode, WorkflowEnvironment

if TYPE_CHECKING:
    from executions.models import Execution, StageRun


class ApprovalGate:
    """Approval gates (`required_approvals` > 0) and manual deploys (mode "manual")."""

    def waiting_status(self, step: WorkflowEnvironment) -> str | None:
        if step.required_approvals > 0:
            return ExecutionStatus.APPROVAL_PENDING
        if step.mode == DeployMode.MANUAL:
            return ExecutionStatus.DEPLOYMENT_PENDING
        return None

    def on_reached(self, execution: Execution, stage: StageRun, waiting: str) -> None:
        """An approval gate opens a request and notifies its approvers; a manual deploy only
        waits for someone with "change workflow" to press Deploy."""
        if waiting == ExecutionStatus.APPROVAL_PENDING:
            do_open_request(execution, stage)

    def on_run_ended(self, execution: Execution, reason: str) -> None:
        do_cancel_requests(execution, reason)

    def expire_due(self) -> int:
        return expire_due_requests()
