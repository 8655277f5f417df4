"""Admin bases: every page scoped to the user's projects, and read-only bases for records that
are looked at, never edited (run history, logs, audit trails).

The admin is one more door to the same rules as the API: a non-superuser sees, chooses and
changes only objects of projects they are a member of, with the spec permission the API asks
for the same action (workflows.permissions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet

from workflows.permissions import PROJECT_PATHS, scoped, visible_projects

if TYPE_CHECKING:  # mixins see the class they are mixed into
    _InlineBase = admin.options.InlineModelAdmin[Any, Any]
else:
    _InlineBase = object


class ProjectScopedAdmin(admin.ModelAdmin):
    """Changelists, change pages, actions, search, filters and foreign-key choices limited to
    the user's projects (superusers see all).

    `project_paths`: lookups from the model to its Project; a row is shown when any of them is
    one of the user's projects. `spec_perms`: the spec permission each admin action ("view",
    "add", "change", "delete") needs, as the API maps methods; actions left out keep Django's
    model permission."""

    project_paths: tuple[str, ...] = ()
    spec_perms: dict[str, str] = {}

    def get_queryset(self, request) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        if not self.project_paths:
            return qs.none()  # an admin that does not say how to scope shows nothing
        projects = visible_projects(request.user)
        match = Q()
        for path in self.project_paths:
            match |= Q(**{f"{path}__in": projects})
        return qs.filter(match)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return scope_choices(field, request)

    def _allowed(self, request, action: str) -> bool | None:
        perm = self.spec_perms.get(action)
        return None if perm is None else request.user.has_perm(perm)

    def has_module_permission(self, request) -> bool:
        if "view" in self.spec_perms:
            return self.has_view_permission(request)
        return super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        allowed = self._allowed(request, "view")
        if allowed is None:
            return super().has_view_permission(request, obj)
        return allowed or self.has_change_permission(request, obj)

    def has_add_permission(self, request, *args) -> bool:
        allowed = self._allowed(request, "add")
        return super().has_add_permission(request, *args) if allowed is None else allowed

    def has_change_permission(self, request, obj=None) -> bool:
        allowed = self._allowed(request, "change")
        return super().has_change_permission(request, obj) if allowed is None else allowed

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = self._allowed(request, "delete")
        return super().has_delete_permission(request, obj) if allowed is None else allowed


def scope_choices(field: forms.Field | None, request) -> forms.Field | None:
    """Limits a choice of projects, services, environments, registries or workflows to the
    user's projects, so no form offers (or accepts) another project's object."""
    if not isinstance(field, forms.ModelChoiceField):  # only these offer rows
        return field
    queryset = field.queryset
    if queryset is not None and queryset.model._meta.label_lower in PROJECT_PATHS:
        field.queryset = scoped(queryset, request.user)
    return field


class ScopedInlineMixin(_InlineBase):
    """Inline rows choose only objects of the user's projects."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return scope_choices(field, request)


class LogAdmin(ProjectScopedAdmin):
    """Shown, never added or edited here (changes go through the service functions); deleting
    stays possible for clean-up."""

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AuditAdmin(LogAdmin):
    """An audit trail: not even deleted from here."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(ScopedInlineMixin, admin.TabularInline):
    """Rows of a record shown inside it, read-only: its `fields` are all that shows."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_view_permission(self, request, obj=None) -> bool:
        # Whoever may see the record sees its rows; a record being added has none.
        if obj is None:
            return False
        return self.admin_site._registry[self.parent_model].has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
