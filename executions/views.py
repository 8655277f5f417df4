"""Browser pages of the executions app: what runs where for a service, with rollback."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from atmosly.errors import Conflict, Invalid
from executions.dora import PERIOD_DAYS, dora_for_service, releases_by_environment
from executions.models import Release
from executions.releases import what_runs_where
from triggers.runs import check_rollback
from workflows.models import Service
from workflows.permissions import CHANGE, VIEW, visible_projects


@login_required
def service_where(request, pk: int):
    """GET: per environment, the release running now, its history (`?environment=<id>` for
    one) and DORA's four metrics over `?period=` (7d, 30d, 90d). POST `release`: roll that
    environment back to it (a new run; never to the release it runs now)."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    service = get_object_or_404(
        Service.objects.filter(project__in=visible_projects(request.user)), pk=pk
    )
    if request.method == "POST":
        release = get_object_or_404(Release, pk=request.POST.get("release"), service=service)
        try:
            execution = check_rollback(request.user, release)
        except (Invalid, Conflict, PermissionDenied) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Rollback started: {execution}")
        target = reverse("service-where", args=[service.pk])
        return redirect(f"{target}?environment={release.environment_id}")

    environment = None
    if request.GET.get("environment", "").isdigit():
        environment = get_object_or_404(service.project.environments, pk=request.GET["environment"])
    period = request.GET.get("period", "30d")
    days = PERIOD_DAYS.get(period, 30)
    return render(
        request,
        "executions/where.html",
        {
            "service": service,
            "rows": what_runs_where(service),
            "environments": releases_by_environment(service, environment),
            "environment": environment,
            "dora": dora_for_service(service, timezone.now(), days, environment),
            "period": period if period in PERIOD_DAYS else "30d",
            "periods": PERIOD_DAYS,
            "can_roll_back": request.user.has_perm(CHANGE),
        },
    )
