"""Browser pages of the executions app: what runs where for a service, with rollback."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from rest_framework.exceptions import APIException

from executions.models import Release
from executions.releases import check_rollback, what_runs_where
from workflows.models import Service
from workflows.permissions import CHANGE, VIEW, visible_projects


@login_required
def service_where(request, pk: int):
    """GET: per environment, the release running now and the history. POST `release`: roll
    that environment back to it (a new run)."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    service = get_object_or_404(
        Service.objects.filter(project__in=visible_projects(request.user)), pk=pk
    )
    if request.method == "POST":
        release = get_object_or_404(Release, pk=request.POST.get("release"), service=service)
        try:
            execution = check_rollback(request.user, release)
        except APIException as exc:
            messages.error(request, str(exc.detail))
        else:
            messages.success(request, f"Rollback started: {execution}")
        return redirect("service-where", pk=service.pk)
    history = service.releases.select_related(
        "environment", "workflow", "execution", "deployed_by"
    )[:50]
    return render(
        request,
        "executions/where.html",
        {
            "service": service,
            "rows": what_runs_where(service),
            "history": history,
            "can_roll_back": request.user.has_perm(CHANGE),
        },
    )
