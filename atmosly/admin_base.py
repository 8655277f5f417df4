"""Admin bases for records that are looked at, never edited: run history, logs, audit trails."""

from __future__ import annotations

from django.contrib import admin


class LogAdmin(admin.ModelAdmin):
    """Shown, never added or edited here (changes go through the service functions); deleting
    stays possible for clean-up."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AuditAdmin(LogAdmin):
    """An audit trail: not even deleted from here."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows of a record shown inside it, read-only: its `fields` are all that shows."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False
