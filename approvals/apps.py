from __future__ import annotations

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self) -> None:
        # Imported here: the gate's modules need the app registry loaded.
        from approvals.gates import ApprovalGate
        from approvals.services import on_approvers_changed
        from executions.gates import register_gate
        from workflows.signals import approvers_changed

        register_gate(ApprovalGate())
        approvers_changed.connect(on_approvers_changed, dispatch_uid="approvals-approvers-changed")
