from __future__ import annotations

from django.contrib import admin

from executions.models import Execution, LogChunk, Report, StageRun, StatusChange


class StageRunInline(admin.TabularInline):
    model = StageRun
    extra = 0
    can_delete = False
    fields = [
        "position",
        "name",
        "kind",
        "environment",
        "status",
        "error",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    can_delete = False
    fields = ["at", "from_status", "to_status", "reason"]
    readonly_fields = fields


class ReportInline(admin.TabularInline):
    model = Report
    extra = 0
    can_delete = False
    fields = ["kind", "filename", "summary", "created_at"]
    readonly_fields = fields


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    """Runs are read-only here: status changes go through the service functions (API, CLI)."""

    list_display = [
        "__str__",
        "status",
        "trigger",
        "ref",
        "commit_sha",
        "triggered_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "trigger", "workflow__service__project"]
    search_fields = ["commit_sha", "ref", "workflow__name", "workflow__service__name"]
    date_hierarchy = "created_at"
    inlines = [StageRunInline, StatusChangeInline, ReportInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(LogChunk)
class LogChunkAdmin(admin.ModelAdmin):
    list_display = ["execution", "seq", "stage_run", "created_at"]
    search_fields = ["text"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
