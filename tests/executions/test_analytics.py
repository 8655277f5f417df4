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
    assert week["success_rate"] == round(2 / 3, 4)  # running is not ended
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


def test_summary_counts_every_ended_run(workflow, users):
    """Issue 15: "3 runs · success rate 100%" beside a chart of 1 succeeded, 1 rejected and 1
    terminated. Every ended run counts in the rate."""
    for number, status in enumerate(("succeeded", "approval_rejected", "terminated"), start=1):
        Execution.objects.create(workflow=workflow, number=number, status=status)
    stats = client_for(users["carol"]).get("/api/executions/stats/?period=7d").json()
    assert stats["total"] == 3 and stats["ended"] == 3
    assert stats["success_rate"] == round(1 / 3, 4)
    assert sum(stats["by_status"].values()) == stats["total"]


def test_queue_time_and_stage_durations(workflow, users):
    from executions.models import StageRun

    now = timezone.now()
    for number, (queued, build) in enumerate(((10, 60), (30, 120)), start=1):
        run = Execution.objects.create(workflow=workflow, number=number, status="succeeded")
        Execution.objects.filter(pk=run.pk).update(
            created_at=now - timedelta(hours=1),
            started_at=now - timedelta(hours=1) + timedelta(seconds=queued),
            finished_at=now,
        )
        for position, (name, took) in enumerate((("Source", 5), ("Build", build))):
            StageRun.objects.create(
                execution=run,
                position=position,
                kind=name.lower(),
                name=name,
                status="succeeded",
                started_at=now - timedelta(seconds=took),
                finished_at=now,
            )
    reused = Execution.objects.create(workflow=workflow, number=3, status="succeeded")
    StageRun.objects.create(
        execution=reused,
        position=0,
        kind="build",
        name="Build",
        status="succeeded",
        output={"reused_from": 1},
        started_at=now - timedelta(seconds=900),
        finished_at=now,
    )
    stats = client_for(users["carol"]).get("/api/executions/stats/?period=7d").json()
    assert stats["queue_average_seconds"] == 20.0
    assert stats["stage_average_seconds"] == {"Source": 5.0, "Build": 90.0}
    assert stats["slowest_stage"] == {"name": "Build", "average_seconds": 90.0}
    assert list(stats["stage_by_day"]["Build"].values()) == [90.0]
    assert stats["queue_by_day"][0]["average_seconds"] == 20.0
