"""The in-app list of approval requests waiting for the current user."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from approvals.models import Decision
from approvals.services import waiting_for


@login_required
def waiting(request):
    requests = waiting_for(request.user)
    for item in requests:
        item.approvals = item.decisions.filter(decision=Decision.APPROVE).count()
    return render(request, "approvals/waiting.html", {"requests": requests})
