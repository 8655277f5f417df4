from __future__ import annotations

from django.contrib import admin

from approvals.models import Approval, ApprovalEvent, ApprovalRequest
from atmosly.admin_base import AuditAdmin, ReadOnlyInline
from workflows.permissions import VIEW


class ApprovalInline(ReadOnlyInline):
    model = Approval
    fields = ["user", "decision", "comment", "created_at"]


class EventInline(ReadOnlyInline):
    model = ApprovalEvent
    fields = ["at", "kind", "user", "comment", "detail"]


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(AuditAdmin):
    project_paths = ("execution__workflow__service__project",)
    spec_perms = {"view": VIEW}
    list_display = ["stage_run", "status", "required", "created_at", "expires_at", "decided_at"]
    list_filter = ["status"]
    search_fields = ["execution__workflow__name", "execution__workflow__service__name"]
    inlines = [ApprovalInline, EventInline]


@admin.register(ApprovalEvent)
class ApprovalEventAdmin(AuditAdmin):
    # A change of approvers is recorded against the deploy step, without a run.
    project_paths = (
        "execution__workflow__service__project",
        "workflow_environment__workflow__service__project",
    )
    spec_perms = {"view": VIEW}
    list_display = ["at", "kind", "user", "execution", "workflow_environment", "comment"]
    list_filter = ["kind"]
    search_fields = ["user__username", "comment"]
