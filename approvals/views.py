"""The in-app list of approval requests waiting for the current user."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from approvals.models import Decision
from approvals.services import waiting_for
from workflows.permissions import VIEW


@login_required
def waiting(request):
    """The "Waiting for me" page; like every page it needs "View workflows" (else 403)."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    requests = waiting_for(request.user)
    for item in requests:
        # For the template, not a field.
        item.approvals = item.decisions.filter(decision=Decision.APPROVE).count()  # type: ignore[attr-defined]
    return render(request, "approvals/waiting.html", {"requests": requests})
