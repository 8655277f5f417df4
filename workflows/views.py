"""Browser pages: the project overview and a workflow's pipeline graph."""

from __future__ import annotations

import hashlib

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from approvals.services import waiting_for
from atmosly.errors import Invalid
from atmosly.forms import add_api_errors
from atmosly.htmx import htmx_partial, render_page_or_partial
from atmosly.pagination import newest_first_page
from atmosly.probes import probe_result, start_probe
from executions.dashboard import RunFilters, runs_page, workflow_rows
from executions.models import Execution
from executions.run_page import page_config
from integrations.models import ScheduledJob
from triggers.runs import check_run_request
from workflows import probes
from workflows.document import upcoming_runs, workflow_document
from workflows.forms import RunForm
from workflows.models import Service, Workflow
from workflows.permissions import ADD, ADD_APPROVER, CHANGE, VIEW, visible_projects


@login_required
def home(request):
    """The live dashboard: a row per workflow (last run, last 10 results), "Waiting for me",
    and the runs list with filters and keyset pagination (executions.dashboard). `?partial=`
    `workflows` or `runs` answers that part alone, for the page's live refresh."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    filters = RunFilters(request.GET)
    runs, next_cursor = (
        runs_page(request.user, filters.cleaned_data) if filters.is_valid() else ([], "")
    )
    partial = request.GET.get("partial")
    query = request.GET.copy()
    query.pop("partial", None)
    query.pop("after", None)
    first_url = f"?{query.urlencode()}" if query else "?"
    if next_cursor:
        query["after"] = next_cursor
    context = {
        "filters": filters,
        "executions": runs,
        "next_url": f"?{query.urlencode()}" if next_cursor else "",
        "first_url": first_url if request.GET.get("after") else "",
    }
    if partial == "runs":
        return render(request, "workflows/htmx/_runs.html", context)
    rows = workflow_rows(request.user)
    if partial == "workflows":
        return render(request, "workflows/htmx/_workflow_rows.html", {"rows": rows})
    context.update(
        rows=rows,
        waiting=len(waiting_for(request.user)),
        workflows=[row["workflow"] for row in rows],
        projects=visible_projects(request.user).prefetch_related("services"),
    )
    return render(request, "workflows/home.html", context)


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

    context = {
        "workflow": workflow,
        "executions": executions,
        "older": older,
        "newer": newer,
        "next_runs": upcoming_runs(workflow),
        "stopped_jobs": ScheduledJob.objects.filter(workflow=workflow).exclude(last_error=""),
    }
    return render(request, "workflows/workflow.html", context)


@login_required
def execution_page(request, pk: int):
    """The run page: header, graph, log viewer, actions and approval card (frontend/src/run/),
    fed by `page_config` and then by the run's websocket."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    execution = get_object_or_404(
        Execution.objects.filter(
            workflow__service__project__in=visible_projects(request.user)
        ).select_related("workflow__service__project", "triggered_by", "rerun_of"),
        pk=pk,
    )

    config = page_config(execution, request.user)
    return render(request, "executions/execution.html", {"execution": execution, "config": config})


@login_required
def analytics_page(request):
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    workflows = Workflow.objects.filter(
        service__project__in=visible_projects(request.user)
    ).select_related("service__project")
    return render(request, "executions/analytics.html", {"workflows": workflows})


def builder_context(user, project, /, **extra) -> dict:
    """What the builder page needs besides the document: the project's environments
    ({name, is_active, target}), registries and members (approver choices), and what this user may change. `project` is positional-only:
    the new-workflow page passes its own `project` entry in `extra`."""
    members = project.members.filter(is_active=True).order_by("username")
    return {
        "environments": [
            # `target` lets the Build panel offer only Kubernetes environments as builders.
            {"name": e.name, "is_active": e.is_active, "target": e.target}
            for e in project.environments.all()
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
    """The visual builder for one workflow; it saves (and reloads) through /api/workflows/<pk>/.
    The page embeds the document GET would answer, so drawing needs no request after the
    bundle (bench/builder_load.py)."""
    workflow = get_workflow_page_object(request, pk)
    config = builder_context(
        request.user,
        workflow.service.project,
        apiUrl=reverse("workflow-detail", args=[workflow.pk]),
        pageUrl=reverse("workflow-page", args=[workflow.pk]),
        document=workflow_document(workflow),
    )
    return render(request, "workflows/builder.html", {"workflow": workflow, "config": config})


@login_required
def new_workflow_page(request, pk: int):
    """The builder for a new workflow of service `pk`; the first save POSTs /api/workflows/."""
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


def workflow_for(user, pk: int) -> Workflow:
    """A workflow of a project the user may see, else 404 (as the API answers)."""
    return get_object_or_404(
        Workflow.objects.filter(service__project__in=visible_projects(user)).select_related(
            "service__project"
        ),
        pk=pk,
    )


def get_workflow_page_object(request, pk: int) -> Workflow:
    """`workflow_for`, for pages that need "View workflows" (403 without it)."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    return workflow_for(request.user, pk)


@login_required
@require_http_methods(["GET", "POST"])
def run_dialog(request, pk: int):
    """GET: the Run dialog (a partial for HTMX, a page otherwise). POST: starts the run through
    `check_run_request`, the API's service function, and sends the browser to the live run;
    errors come back next to their fields with the API's paths and messages."""
    workflow = workflow_for(request.user, pk)
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied
    form = RunForm(request.POST or None, workflow=workflow)
    if request.method == "POST":
        data = {name: request.POST.get(name, "") for name in form.fields}
        try:
            execution = check_run_request(request.user, workflow, data)
        except (Invalid, PermissionDenied) as exc:
            add_api_errors(form, exc)
        else:
            url = reverse("execution-page", args=[execution.pk])
            return HttpResponseClientRedirect(url) if htmx_partial(request) else redirect(url)
    partial = (
        "workflows/htmx/_run_form.html"
        if request.method == "POST"
        else ("workflows/htmx/_run_dialog.html")
    )
    context = {"workflow": workflow, "form": form}
    status = 400 if form.errors else 200
    return render_page_or_partial(request, "workflows/run.html", partial, context, status)


@login_required
def run_refs(request, pk: int):
    """The branches and tags of the workflow's repository for the Run dialog's picker, from a
    `git ls-remote` run off the request thread and cached a minute; polled until it is done."""
    workflow = workflow_for(request.user, pk)
    service = workflow.service
    if not request.user.has_perm(VIEW) or not service.repo_url:
        raise PermissionDenied
    probe_id = start_probe(
        probes.git_refs,
        service.repo_url,
        service.git_username,
        service.git_token,
        service.git_ssh_key,
        owner=request.user.pk,
        key=refs_probe_key(service),
        ttl=60,
    )
    result = probe_result(probe_id)
    return render(request, "workflows/htmx/_refs.html", {"workflow": workflow, "result": result})


def refs_probe_key(service: Service) -> str:
    """Changes with the URL and credentials, so a fixed token is not served an old error."""
    material = "\0".join(
        (service.repo_url, service.git_username, service.git_token, service.git_ssh_key)
    )
    return f"refs-{service.pk}-{hashlib.sha256(material.encode()).hexdigest()[:20]}"
