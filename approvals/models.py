"""Approval requests on deploy steps, the decisions on them, and their audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class RequestStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class ApprovalRequest(models.Model):
    """A deploy stage waiting for N approvals. Decided once: open → approved/rejected/expired,
    or cancelled when the run is terminated."""

    stage_run = models.OneToOneField(
        "executions.StageRun", on_delete=models.CASCADE, related_name="approval_request"
    )
    execution = models.ForeignKey(
        "executions.Execution", on_delete=models.CASCADE, related_name="approval_requests"
    )
    workflow_environment = models.ForeignKey(
        "workflows.WorkflowEnvironment", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    required = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=10, choices=RequestStatus.choices, default=RequestStatus.OPEN
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"approval for {self.stage_run}"


class Approval(models.Model):
    """One approver's decision on one request. Never edited once written."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    stage_run = models.ForeignKey(
        "executions.StageRun", on_delete=models.CASCADE, related_name="approvals"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # A user counts once, however many of the approver groups they are in.
            models.UniqueConstraint(fields=["request", "user"], name="approval_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.decision} {self.stage_run}"


class EventKind(models.TextChoices):
    REQUESTED = "requested", "Approval requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    GRANTED = "granted", "Approvals complete"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    APPROVERS_CHANGED = "approvers_changed", "Approvers changed"
    DEPLOY_TRIGGERED = "deploy_triggered", "Manual deploy triggered"


class ApprovalEvent(models.Model):
    """The audit trail: every request, decision, expiry and change of approvers."""

    execution = models.ForeignKey(
        "executions.Execution",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approval_events",
    )
    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    workflow_environment = models.ForeignKey(
        "workflows.WorkflowEnvironment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comment = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.user or 'system'}"
