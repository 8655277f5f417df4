"""Execution analytics: breakdown by status, success rate, duration, per day, by period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions.analytics import rebuild_daily_stats
from executions.models import Execution
from executions.status import ExecutionStatus
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
    rebuild_daily_stats()  # ended without the lifecycle, which writes the daily rows
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
    rebuild_daily_stats()  # ended without the lifecycle, which writes the daily rows
    stats = client_for(users["carol"]).get("/api/executions/stats/?period=7d").json()
    assert stats["queue_average_seconds"] == 20.0
    assert stats["stage_average_seconds"] == {"Source": 5.0, "Build": 90.0}
    assert stats["slowest_stage"] == {"name": "Build", "average_seconds": 90.0}
    assert list(stats["stage_by_day"]["Build"].values()) == [90.0]
    assert stats["queue_by_day"][0]["average_seconds"] == 20.0


def reference_answer(period: str, **filters) -> dict:
    """The whole analytics answer recomputed from every run and stage of the period, the slow
    way (what the statistics answered before the daily tables and the partial days' SQL)."""
    from collections import defaultdict

    from executions.analytics import PERIODS
    from executions.models import StageRun
    from executions.status import TERMINAL

    since = timezone.now() - PERIODS[period]
    runs = list(Execution.objects.filter(created_at__gte=since, **filters))
    by_status: dict = defaultdict(int)
    by_day: dict = defaultdict(lambda: defaultdict(int))
    lengths, queues = [], defaultdict(list)
    for run in runs:
        day = timezone.localtime(run.created_at).date().isoformat()
        by_status[run.status] += 1
        by_day[day][run.status] += 1
        if run.status in TERMINAL and run.started_at and run.finished_at:
            lengths.append((run.finished_at - run.started_at).total_seconds())
        if run.started_at:
            queues[day].append((run.started_at - run.created_at).total_seconds())
    stages = defaultdict(lambda: defaultdict(list))
    for stage in StageRun.objects.filter(execution__in=runs).select_related("execution"):
        if stage.started_at and stage.finished_at and "reused_from" not in stage.output:
            day = timezone.localtime(stage.execution.created_at).date().isoformat()
            stages[stage.name][day].append((stage.finished_at - stage.started_at).total_seconds())

    def avg(values):
        return round(sum(values) / len(values), 3) if values else None

    ended = sum(by_status[s] for s in TERMINAL)
    overall = {name: avg([v for d in days.values() for v in d]) for name, days in stages.items()}
    slowest = max(overall.items(), key=lambda item: item[1] or 0, default=(None, None))
    return {
        "total": len(runs),
        "ended": ended,
        "by_status": {s.value: by_status.get(s.value, 0) for s in ExecutionStatus},
        "success_rate": round(by_status["succeeded"] / ended, 4) if ended else None,
        "average_duration_seconds": avg(lengths),
        "by_day": [{"day": d, **by_day[d]} for d in sorted(by_day)],
        "queue_average_seconds": avg([v for d in queues.values() for v in d]),
        "queue_by_day": [{"day": d, "average_seconds": avg(queues[d])} for d in sorted(queues)],
        "stage_average_seconds": overall,
        "stage_by_day": {
            n: {d: avg(v) for d, v in sorted(days.items())} for n, days in stages.items()
        },
        "slowest_stage": None
        if slowest[0] is None
        else {"name": slowest[0], "average_seconds": slowest[1]},
    }


def test_stats_from_daily_rows_and_partial_days_equal_a_recomputation(workflow, users):
    """The period's whole days come from the daily tables (written as runs end, and by a
    rebuild), its partial first day and today from SQL sums: together, the same figures as
    reading every run and stage, for every period, with and without filters. Runs sit on
    both sides of each period's first-day boundary and of midnight today; some have not
    ended, one stage was reused by a re-run, one ended after its run was terminated."""
    import random

    from executions.analytics import PERIODS, rebuild_daily_stats
    from executions.models import DailyStageStat, DailyStat, StageRun
    from executions.services import do_change_stage_status, do_change_status

    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(16)
    ages = [timedelta(minutes=m) for m in (5, 30)] + [now - midnight + timedelta(minutes=10)]
    for period in PERIODS.values():  # just inside and just outside each period's start
        ages += [period - timedelta(minutes=20), period + timedelta(minutes=20)]
    ages += [timedelta(days=rng.randrange(1, 95), seconds=rng.randrange(86400)) for _ in range(40)]
    late_stage = None
    for number, age in enumerate(ages, start=1):
        run = Execution.objects.create(workflow=workflow, number=number)
        created = now - age
        Execution.objects.filter(pk=run.pk).update(created_at=created)
        run.refresh_from_db()
        do_change_status(run, "running")
        for position, name in enumerate(("Source", "Build", "Deploy")):
            took = rng.randrange(1, 300)
            StageRun.objects.create(
                execution=run,
                position=position,
                kind=name.lower(),
                name=name,
                status="succeeded",
                started_at=created + timedelta(seconds=10 * position),
                finished_at=created + timedelta(seconds=10 * position + took),
                output={"reused_from": 1} if number == 7 and name == "Build" else {},
            )
        if number % 6 == 0:
            continue  # still running
        if number == 10:
            stage = StageRun.objects.create(
                execution=run, position=3, kind="deploy", name="Deploy", status="running"
            )
            StageRun.objects.filter(pk=stage.pk).update(started_at=created)
            stage.refresh_from_db()
            do_change_status(run, "terminating")
            do_change_status(run, "terminated")
            late_stage = do_change_stage_status(stage, "terminated")
            continue
        do_change_status(run, rng.choice(["succeeded", "succeeded", "failed", "error"]))
    assert late_stage is not None and DailyStageStat.objects.exists()

    client = client_for(users["carol"])
    queries = (
        [(f"period={p}", {}) for p in PERIODS]
        + [("period=90d&status=failed,error", {"status__in": ["failed", "error"]})]
        + [("period=30d&status=running", {"status": "running"})]
        + [(f"period=7d&workflow={workflow.pk}", {"workflow": workflow})]
    )

    def check():
        for query, filters in queries:
            answer = client.get(f"/api/executions/stats/?{query}").json()
            period = query.split("&")[0].split("=")[1]
            expected = reference_answer(period, **filters)
            assert {k: answer[k] for k in expected} == expected, query

    check()
    # What the lifecycle wrote is what a rebuild from the history writes.
    columns = ("day", "workflow_id", "status", "count", "timed_count", "queued_count")
    written = sorted(DailyStat.objects.values_list(*columns))
    stage_columns = ("day", "workflow_id", "status", "name", "count")
    stages_written = sorted(DailyStageStat.objects.values_list(*stage_columns))
    rebuild_daily_stats()
    assert sorted(DailyStat.objects.values_list(*columns)) == written
    assert sorted(DailyStageStat.objects.values_list(*stage_columns)) == stages_written
    check()
