"""The default roles and the permissions each holds (used by the `0002_roles` migration)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Or the historical models a migration gets from `apps`.
    from django.contrib.auth.models import Group, Permission

ROLES: dict[str, list[str]] = {
    "Viewer": ["view_workflow"],
    "Developer": ["view_workflow", "add_workflow", "change_workflow"],
    "Approver": ["view_workflow", "approve_pipeline"],
    "Admin": [
        "view_workflow",
        "add_workflow",
        "change_workflow",
        "delete_workflow",
        "add_approver",
        "approve_pipeline",
        "add_project",
        "change_project",
        "delete_project",
        "view_project",
    ],
}


def ensure_roles(group_model: type[Group], permission_model: type[Permission]) -> None:
    for role, codenames in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.add(
            *permission_model.objects.filter(
                content_type__app_label="workflows", codename__in=codenames
            )
        )
