"""Browser pages: the project overview and a workflow's pipeline graph."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from atmosly.pagination import newest_first_page
from executions.models import Execution
from workflows.models import Workflow
from workflows.permissions import VIEW, visible_projects


@login_required
def home(request):
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    projects = visible_projects(request.user).prefetch_related(
        "services__workflows", "environments"
    )
    runs = Execution.objects.filter(
        workflow__service__project__in=visible_projects(request.user)
    ).select_related("workflow__service")
    executions, older, newer = newest_first_page(request, runs.prefetch_related("triggered_by"))
    return render(
        request,
        "workflows/home.html",
        {"projects": projects, "executions": executions, "older": older, "newer": newer},
    )


@login_required
def workflow_page(request, pk: int):
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    workflow = get_object_or_404(
        Workflow.objects.filter(service__project__in=visible_projects(request.user)), pk=pk
    )
    executions, older, newer = newest_first_page(
        request,
        workflow.executions.select_related("workflow__service").prefetch_related("triggered_by"),
    )
    return render(
        request,
        "workflows/workflow.html",
        {"workflow": workflow, "executions": executions, "older": older, "newer": newer},
    )


@login_required
def execution_page(request, pk: int):
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    execution = get_object_or_404(
        Execution.objects.filter(
            workflow__service__project__in=visible_projects(request.user)
        ).select_related("workflow__service__project", "triggered_by"),
        pk=pk,
    )
    return render(request, "executions/execution.html", {"execution": execution})


@login_required
def analytics_page(request):
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    workflows = Workflow.objects.filter(
        service__project__in=visible_projects(request.user)
    ).select_related("service__project")
    return render(request, "executions/analytics.html", {"workflows": workflows})
