"""The spec's six workflow permissions, and who may see which project.

Roles are Django groups holding these permissions (see the `roles` data migration); a user sees
only the projects they are a member of, superusers see all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model, QuerySet
from rest_framework.permissions import BasePermission

from workflows.models import Project

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

_M = TypeVar("_M", bound=Model)

VIEW = "workflows.view_workflow"
ADD = "workflows.add_workflow"
CHANGE = "workflows.change_workflow"
DELETE = "workflows.delete_workflow"
ADD_APPROVER = "workflows.add_approver"
APPROVE = "workflows.approve_pipeline"
# Django's model permission on Project, held by the Admin role: with membership, it makes a
# user an administrator of that project (see `administers`).
CHANGE_PROJECT = "workflows.change_project"

SPEC_PERMISSIONS = {
    VIEW: "View workflows",
    ADD: "Add workflow",
    CHANGE: "Change workflow",
    DELETE: "Delete workflow",
    ADD_APPROVER: "Add approver to workflows",
    APPROVE: "Approve pipeline",
}

# What each HTTP method needs on the objects of a project (services, environments, registries,
# workflows). Creating a service creates its workflow, so it needs "add workflow".
METHOD_PERMISSIONS = {
    "GET": VIEW,
    "HEAD": VIEW,
    "OPTIONS": VIEW,
    "POST": ADD,
    "PUT": CHANGE,
    "PATCH": CHANGE,
    "DELETE": DELETE,
}


def visible_projects(user: User | AnonymousUser) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(members=user)


def is_member(user: User | AnonymousUser, project: Project) -> bool:
    if user.is_superuser:
        return True
    return user.pk is not None and project.members.filter(pk=user.pk).exists()


def administers(user: User | AnonymousUser, project: Project) -> bool:
    """Who may change a project and its members: a superuser, or a member of that project whose
    role holds "change project" (the Admin role). Roles are global, membership is per project,
    so an Admin of one project administers no other."""
    return user.is_superuser or (user.has_perm(CHANGE_PROJECT) and is_member(user, project))


# How each project-owned model reaches its project, for scoping querysets to a user's projects.
PROJECT_PATHS: dict[str, str] = {
    "workflows.project": "pk",
    "workflows.service": "project",
    "workflows.environment": "project",
    "workflows.registryconnection": "project",
    "workflows.workflow": "service__project",
    "workflows.workflowenvironment": "workflow__service__project",
    "workflows.civariable": "workflow__service__project",
    "executions.execution": "workflow__service__project",
}


def scoped(
    queryset: QuerySet[_M], user: User | AnonymousUser, path: str | None = None
) -> QuerySet[_M]:
    """`queryset` limited to the projects `user` is a member of (superusers: all of it).
    `path` is the lookup from the model to its Project; by default the one in PROJECT_PATHS."""
    if user.is_superuser:
        return queryset
    path = path or PROJECT_PATHS[queryset.model._meta.label_lower]
    return queryset.filter(**{f"{path}__in": visible_projects(user)})


class WorkflowPermission(BasePermission):
    """Maps the request method to a spec permission; views may override with `required_perm`
    (a perm string, or a dict of action name → perm string)."""

    message = "You do not have permission to perform this action."

    def required(self, request: Request, view: APIView) -> str:
        required = getattr(view, "required_perm", None)
        if isinstance(required, dict):
            required = required.get(getattr(view, "action", None))
        if required:
            return required
        method_perms = getattr(view, "method_perms", METHOD_PERMISSIONS)
        return method_perms.get(request.method, CHANGE)

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        perm = self.required(request, view)
        if not request.user.has_perm(perm):
            self.message = f'This needs the "{perm_label(perm)}" permission.'
            return False
        return True


def perm_label(perm: str) -> str:
    if perm in SPEC_PERMISSIONS:
        return SPEC_PERMISSIONS[perm]
    return perm.split(".", 1)[-1].replace("_", " ")
