from __future__ import annotations

from django.contrib import admin

from approvals.models import Approval


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    """The audit of decisions: never edited, never deleted from here."""

    list_display = ["stage_run", "user", "decision", "comment", "created_at"]
    list_filter = ["decision"]
    search_fields = ["user__username", "comment"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
