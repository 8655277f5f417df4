"""Execution analytics: status breakdowns and daily counts over a time period.

Runs that ended are counted from `DailyStat` (one row per day, workflow and terminal status, kept
by `record_finished_run` in the transaction that ends the run), so a 90-day answer reads at most
90 days x workflows x statuses rows instead of the history. Only the period's two partial days (its
first and today) and the runs that have not ended are read from `Execution`, through the
`(created_at, id)` and `(status, created_at, id)` indexes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Avg, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from executions.models import DailyStat, Execution, StageRun
from executions.status import TERMINAL, UNFINISHED, ExecutionStatus

PERIODS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}


def day_of(moment: datetime) -> date:
    """The day a run is counted on: its creation date in the site's time zone (UTC)."""
    return timezone.localtime(moment).date()


def start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def record_finished_run(execution_id: int) -> None:
    """Adds a run that just reached a terminal status to its day's row. Call inside the
    transaction that moved it, so the count and the status change commit together; the run is
    read back there, as the caller's copy may predate its start."""
    execution = Execution.objects.only(
        "created_at", "workflow_id", "status", "started_at", "finished_at"
    ).get(pk=execution_id)
    duration = None
    if execution.started_at and execution.finished_at:
        duration = (execution.finished_at - execution.started_at).total_seconds()
    key = {
        "day": day_of(execution.created_at),
        "workflow_id": execution.workflow_id,
        "status": execution.status,
    }
    bump = {
        "count": F("count") + 1,
        "timed_count": F("timed_count") + (1 if duration is not None else 0),
        "duration_seconds": F("duration_seconds") + (duration or 0.0),
    }
    if DailyStat.objects.filter(**key).update(**bump):
        return
    try:
        with transaction.atomic():  # a savepoint: another run of the same day may insert first
            DailyStat.objects.create(
                **key,
                count=1,
                timed_count=1 if duration is not None else 0,
                duration_seconds=duration or 0.0,
            )
    except IntegrityError:
        DailyStat.objects.filter(**key).update(**bump)


def rebuild_daily_stats(
    execution_model: type[Execution] = Execution, stat_model: type[DailyStat] = DailyStat
) -> int:
    """Recomputes every DailyStat row from the history (a migration, or history loaded
    without the lifecycle, e.g. bench/history.py); returns the number of rows written. The
    models are parameters so a migration can pass its historical ones."""
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0])
    rows = (
        execution_model.objects.filter(status__in=TERMINAL)
        .order_by()
        .values_list("created_at", "workflow_id", "status", "started_at", "finished_at")
    )
    for created, workflow_id, status, started, finished in rows.iterator(chunk_size=5000):
        total = totals[(day_of(created), workflow_id, status)]
        total[0] += 1
        if started and finished:
            total[1] += 1
            total[2] += (finished - started).total_seconds()
    with transaction.atomic():
        stat_model.objects.all().delete()
        stat_model.objects.bulk_create(
            [
                stat_model(
                    day=day,
                    workflow_id=workflow_id,
                    status=status,
                    count=count,
                    timed_count=timed,
                    duration_seconds=seconds,
                )
                for (day, workflow_id, status), (count, timed, seconds) in totals.items()
            ],
            batch_size=1000,
        )
    return len(totals)


def execution_stats(workflow_ids: list[int], statuses: list[str] | None, period: str) -> dict:
    """Counts by status and day, success rate and average length (seconds) of the runs of
    `workflow_ids` created in the last `period`, only those in `statuses` when given. The
    workflows are passed as ids, not a join: joined, SQLite plans some of these queries as a
    scan of the workflow's whole history."""
    now = timezone.now()
    since = now - PERIODS[period]
    # Whole days strictly between the period's first (partial) day and today come from
    # DailyStat; the rest (at most about two days, and every run still going) from the runs.
    first_whole, today = day_of(since) + timedelta(days=1), day_of(now)
    by_status: dict[str, int] = defaultdict(int)
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    timed, seconds = 0, 0.0
    stats = DailyStat.objects.filter(workflow_id__in=workflow_ids)
    runs = Execution.objects.filter(workflow_id__in=workflow_ids)
    if statuses is not None:
        stats, runs = stats.filter(status__in=statuses), runs.filter(status__in=statuses)

    rows = (
        stats.filter(day__gte=first_whole, day__lt=today)
        .values("day", "status")
        .annotate(n=Sum("count"), timed=Sum("timed_count"), seconds=Sum("duration_seconds"))
        .order_by()
    )
    for row in rows:
        by_status[row["status"]] += row["n"]
        by_day[row["day"].isoformat()][row["status"]] += row["n"]
        timed += row["timed"]
        seconds += row["seconds"]

    columns = ("created_at", "status", "started_at", "finished_at")
    if first_whole < today:
        edges = Q(created_at__gte=since, created_at__lt=start_of(first_whole)) | Q(
            created_at__gte=start_of(today)
        )
    else:
        edges = Q(created_at__gte=since)
    found = list(runs.filter(edges).order_by().values_list(*columns))
    # Runs of the whole days that have not ended: few, read by status alone (the partial
    # index) and narrowed here. Always this one query, whatever the period.
    lo, hi = start_of(first_whole), start_of(today)
    wanted = set(workflow_ids)
    going = Execution.objects.filter(status__in=UNFINISHED).order_by()
    for workflow_id, *row in going.values_list("workflow_id", *columns):
        if workflow_id in wanted and lo <= row[0] < hi and (statuses is None or row[1] in statuses):
            found.append(tuple(row))
    for created, status, started, finished in found:
        by_status[status] += 1
        by_day[day_of(created).isoformat()][status] += 1
        if status in TERMINAL and started and finished:
            timed += 1
            seconds += (finished - started).total_seconds()

    # Every run that has ended counts: a rejected, terminated or errored run did not succeed
    # (the summary once left them out and read 100% next to a chart that showed them).
    ended = sum(n for s, n in by_status.items() if s in TERMINAL)
    period_runs = runs.filter(created_at__gte=since)
    return {
        "period": period,
        "since": since.isoformat(),
        "total": sum(by_status.values()),
        "ended": ended,
        "by_status": {s.value: by_status.get(s.value, 0) for s in ExecutionStatus},
        "success_rate": round(by_status.get(ExecutionStatus.SUCCEEDED, 0) / ended, 4)
        if ended
        else None,
        "average_duration_seconds": round(seconds / timed, 3) if timed else None,
        "by_day": [{"day": day, **by_day[day]} for day in sorted(by_day)],
        # Queue and stage times read the period's runs and stages themselves (no daily rows
        # for them yet): their cost grows with the period's history.
        **queue_and_stage_stats(period_runs),
    }


def as_seconds(delta: timedelta | None) -> float | None:
    return round(delta.total_seconds(), 3) if delta is not None else None


def queue_and_stage_stats(runs: QuerySet[Execution]) -> dict:
    """Queue time (created → started) on average and per day, and each stage's average
    duration per day, with the slowest stage (highest average) over the period. Stages a
    re-run reused are left out: they did not run again."""
    queue = ExpressionWrapper(F("started_at") - F("created_at"), output_field=DurationField())
    started = runs.filter(started_at__isnull=False)
    queue_avg = started.aggregate(avg=Avg(queue))["avg"]
    queue_days = [
        {"day": row["day"].isoformat(), "average_seconds": as_seconds(row["avg"])}
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
        by_stage.setdefault(row["name"], {})[row["day"].isoformat()] = as_seconds(row["avg"])
    overall = {
        row["name"]: as_seconds(row["avg"])
        for row in stages.values("name").annotate(avg=Avg(took)).order_by()
    }
    slowest = max(overall.items(), key=lambda item: item[1] or 0, default=(None, None))
    return {
        "queue_average_seconds": as_seconds(queue_avg),
        "queue_by_day": queue_days,
        "stage_average_seconds": overall,
        "stage_by_day": by_stage,
        "slowest_stage": None
        if slowest[0] is None
        else {"name": slowest[0], "average_seconds": slowest[1]},
    }
