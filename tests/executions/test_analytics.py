"""Execution analytics: breakdown by status, success rate, duration, per day, by period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions.analytics import rebuild_daily_stats
from executions.models import Execution
from tests.base import client_for

pytestmark = pytest.mark.django_db


def make_runs(workflow):
    now = timezone.now()
    rows = [
        ("succeeded", timedelta(hours=1), 30),
        ("succeeded", timedelta(days=2), 90),
        ("failed", timedelta(days=2), 60),
        ("error", timedelta(days=20), 10),
        ("running", timedelta(minutes=5), None),
    ]
    for number, (status, age, seconds) in enumerate(rows, start=1):
        run = Execution.objects.create(workflow=workflow, number=number, status=status)
        started = now - age
        Execution.objects.filter(pk=run.pk).update(
            created_at=started,
            started_at=started,
            finished_at=started + timedelta(seconds=seconds) if seconds else None,
        )
    # Loaded without the lifecycle (which keeps the daily statistics as runs end): rebuild them.
    rebuild_daily_stats()


def test_stats_by_period(workflow, users):
    make_runs(workflow)
    client = client_for(users["carol"])
    week = client.get(f"/api/executions/stats/?period=7d&workflow={workflow.pk}").json()
    assert week["total"] == 4
    assert week["by_status"]["succeeded"] == 2 and week["by_status"]["failed"] == 1
    assert week["success_rate"] == round(2 / 3, 4)
    assert week["average_duration_seconds"] == 60.0
    assert sum(sum(v for k, v in d.items() if k != "day") for d in week["by_day"]) == 4
    month = client.get("/api/executions/stats/?period=30d").json()
    assert month["total"] == 5 and month["by_status"]["error"] == 1
    day = client.get("/api/executions/stats/?period=24h").json()
    assert day["total"] == 2


def test_stats_bad_period_and_permissions(workflow, users):
    bad = client_for(users["carol"]).get("/api/executions/stats/?period=1y")
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"field": "period", "message": "use one of 24h, 7d, 30d, 90d"}]
    assert client_for(users["frank"]).get("/api/executions/stats/").status_code == 403
    make_runs(workflow)
    assert client_for(users["erin"]).get("/api/executions/stats/").json()["total"] == 0
