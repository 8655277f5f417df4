"""Approval decisions on a deploy step of an execution."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class Approval(models.Model):
    """One approver's decision on one deploy stage run. Never edited once written."""

    stage_run = models.ForeignKey(
        "executions.StageRun", on_delete=models.CASCADE, related_name="approvals"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["stage_run", "created_at"]
        constraints = [
            # A user counts once, however many of the approver groups they are in.
            models.UniqueConstraint(fields=["stage_run", "user"], name="approval_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.decision} {self.stage_run}"
