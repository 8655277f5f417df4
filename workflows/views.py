"""Browser pages: the project overview and a workflow's pipeline graph."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from executions.models import Execution
from workflows.models import Service, Workflow
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
    from executions.scheduler import place_of

    context = {"execution": execution, "queue": place_of(execution)}
    return render(request, "executions/execution.html", context)


@login_required
def analytics_page(request):
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    workflows = Workflow.objects.filter(
        service__project__in=visible_projects(request.user)
    ).select_related("service__project")
    return render(request, "executions/analytics.html", {"workflows": workflows})


def builder_context(user, project, **extra) -> dict:
    """What the builder page needs besides the document: the project's environments, registries
    and members (approver choices), and what this user may change."""
    from django.contrib.auth.models import Group

    from workflows.permissions import ADD_APPROVER, CHANGE

    members = project.members.filter(is_active=True).order_by("username")
    return {
        "environments": [
            {"name": e.name, "is_active": e.is_active} for e in project.environments.all()
        ],
        "registries": list(project.registries.values_list("name", flat=True)),
        "users": list(members.values_list("username", flat=True)),
        "groups": list(
            Group.objects.filter(user__in=members)
            .distinct()
            .order_by("name")
            .values_list("name", flat=True)
        ),
        "canEdit": user.has_perm(CHANGE),
        "canEditApprovers": user.has_perm(CHANGE) and user.has_perm(ADD_APPROVER),
        **extra,
    }


@login_required
def workflow_builder_page(request, pk: int):
    """The visual builder for one workflow; it loads and saves through /api/workflows/<pk>/."""
    workflow = get_workflow_page_object(request, pk)
    config = builder_context(
        request.user,
        workflow.service.project,
        apiUrl=reverse("workflow-detail", args=[workflow.pk]),
        pageUrl=reverse("workflow-page", args=[workflow.pk]),
    )
    return render(request, "workflows/builder.html", {"workflow": workflow, "config": config})


@login_required
def new_workflow_page(request, pk: int):
    """The builder for a new workflow of service `pk`; the first save POSTs /api/workflows/."""
    from workflows.permissions import ADD

    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    service = get_object_or_404(
        Service.objects.filter(project__in=visible_projects(request.user)).select_related(
            "project"
        ),
        pk=pk,
    )
    config = builder_context(
        request.user,
        service.project,
        createUrl=reverse("workflow-list"),
        service={
            "id": service.pk,
            "name": service.name,
            "git": bool(service.repo_url),
            "image": service.image,
            "default_branch": service.default_branch,
        },
        project={"id": service.project_id, "name": service.project.name},
    )
    config["canEdit"] = request.user.has_perm(ADD)
    return render(request, "workflows/builder.html", {"service": service, "config": config})


def get_workflow_page_object(request, pk: int) -> Workflow:
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    return get_object_or_404(
        Workflow.objects.filter(service__project__in=visible_projects(request.user)).select_related(
            "service__project"
        ),
        pk=pk,
    )
