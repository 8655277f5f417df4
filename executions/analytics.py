"""Execution analytics: status breakdowns and daily counts over a time period."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from executions.models import Execution, StageRun
from executions.status import TERMINAL, ExecutionStatus

PERIODS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}


def execution_stats(executions: QuerySet[Execution], period: str) -> dict:
    since = timezone.now() - PERIODS[period]
    runs = executions.filter(created_at__gte=since)
    by_status = dict(runs.values_list("status").annotate(n=Count("id")).order_by())
    finished = runs.filter(started_at__isnull=False, finished_at__isnull=False)
    duration = finished.aggregate(
        avg=Avg(ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField()))
    )["avg"]
    days: dict[str, dict[str, int]] = {}
    for row in (
        runs.annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by("day")
    ):
        days.setdefault(row["day"].isoformat(), {})[row["status"]] = row["n"]
    # Every run that has ended counts: a rejected, terminated or errored run did not succeed
    # (the summary once left them out and read 100% next to a chart that showed them).
    ended = sum(n for s, n in by_status.items() if s in TERMINAL)
    succeeded = by_status.get(ExecutionStatus.SUCCEEDED, 0)
    return {
        "period": period,
        "since": since.isoformat(),
        "total": sum(by_status.values()),
        "ended": ended,
        "by_status": {s.value: by_status.get(s.value, 0) for s in ExecutionStatus},
        "success_rate": round(succeeded / ended, 4) if ended else None,
        "average_duration_seconds": duration.total_seconds() if duration else None,
        "by_day": [{"day": day, **counts} for day, counts in days.items()],
        **queue_and_stage_stats(runs),
    }


def seconds(delta) -> float | None:
    return round(delta.total_seconds(), 3) if delta is not None else None


def queue_and_stage_stats(runs: QuerySet[Execution]) -> dict:
    """Queue time (created → started) on average and per day, and each stage's average
    duration per day, with the slowest stage (highest average) over the period. Stages a
    re-run reused are left out: they did not run again."""
    queue = ExpressionWrapper(F("started_at") - F("created_at"), output_field=DurationField())
    started = runs.filter(started_at__isnull=False)
    queue_avg = started.aggregate(avg=Avg(queue))["avg"]
    queue_days = [
        {"day": row["day"].isoformat(), "average_seconds": seconds(row["avg"])}
        for row in started.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(avg=Avg(queue))
        .order_by("day")
    ]
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    stages = (
        StageRun.objects.filter(
            execution__in=runs.values("pk"), started_at__isnull=False, finished_at__isnull=False
        )
        .exclude(output__has_key="reused_from")
        .annotate(day=TruncDate("execution__created_at"))
    )
    by_stage: dict[str, dict[str, float | None]] = {}
    for row in stages.values("name", "day").annotate(avg=Avg(took)).order_by("day", "name"):
        by_stage.setdefault(row["name"], {})[row["day"].isoformat()] = seconds(row["avg"])
    overall = {
        row["name"]: seconds(row["avg"])
        for row in stages.values("name").annotate(avg=Avg(took)).order_by()
    }
    slowest = max(overall.items(), key=lambda item: item[1] or 0, default=(None, None))
    return {
        "queue_average_seconds": seconds(queue_avg),
        "queue_by_day": queue_days,
        "stage_average_seconds": overall,
        "stage_by_day": by_stage,
        "slowest_stage": None
        if slowest[0] is None
        else {"name": slowest[0], "average_seconds": slowest[1]},
    }
