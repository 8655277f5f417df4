from __future__ import annotations

from django.contrib import admin

from approvals.models import Approval, ApprovalEvent, ApprovalRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit is never edited or deleted from here."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


class ApprovalInline(admin.TabularInline):
    model = Approval
    extra = 0
    can_delete = False
    fields = ["user", "decision", "comment", "created_at"]
    readonly_fields = fields


class EventInline(admin.TabularInline):
    model = ApprovalEvent
    extra = 0
    can_delete = False
    fields = ["at", "kind", "user", "comment", "detail"]
    readonly_fields = fields


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ["stage_run", "status", "required", "created_at", "expires_at", "decided_at"]
    list_filter = ["status"]
    search_fields = ["execution__workflow__name", "execution__workflow__service__name"]
    inlines = [ApprovalInline, EventInline]


@admin.register(ApprovalEvent)
class ApprovalEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "user", "execution", "workflow_environment", "comment"]
    list_filter = ["kind"]
    search_fields = ["user__username", "comment"]
