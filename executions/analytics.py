"""Execution analytics: status breakdowns and daily counts over a time period."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from executions.models import Execution
from executions.status import ExecutionStatus

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
    ended = sum(
        n
        for s, n in by_status.items()
        if s in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.ERROR)
    )
    return {
        "period": period,
        "since": since.isoformat(),
        "total": sum(by_status.values()),
        "by_status": {s.value: by_status.get(s.value, 0) for s in ExecutionStatus},
        "success_rate": round(by_status.get(ExecutionStatus.SUCCEEDED, 0) / ended, 4)
        if ended
        else None,
        "average_duration_seconds": duration.total_seconds() if duration else None,
        "by_day": [{"day": day, **counts} for day, counts in days.items()],
    }
