"""Browser pages: the project overview and a workflow's pipeline graph."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

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
    executions = Execution.objects.filter(
        workflow__service__project__in=visible_projects(request.user)
    ).select_related("workflow__service")[:20]
    return render(request, "workflows/home.html", {"projects": projects, "executions": executions})


@login_required
def workflow_page(request, pk: int):
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    workflow = get_object_or_404(
        Workflow.objects.filter(service__project__in=visible_projects(request.user)), pk=pk
    )
    executions = workflow.executions.select_related("triggered_by")[:20]
    from integrations.models import ScheduledJob
    from workflows.document import upcoming_runs

    context = {
        "workflow": workflow,
        "executions": executions,
        "next_runs": upcoming_runs(workflow),
        "stopped_jobs": ScheduledJob.objects.filter(workflow=workflow).exclude(last_error=""),
    }
    return render(request, "workflows/workflow.html", context)


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
