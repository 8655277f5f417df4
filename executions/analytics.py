"""Execution analytics: status breakdowns, run lengths, queue times and stage durations, per
day, over a time period.

Runs that ended are counted from `DailyStat` and their stages from `DailyStageStat` (one row per
day, workflow and terminal status, and stage name; kept by `record_finished_run` in the
transaction that ends the run), so a 90-day answer reads at most 90 days x workflows x statuses
(x stage names) rows instead of the history; today's row is complete for the runs that ended.
The part of the period's first day after its start is aggregated by the database from
`Execution` and `StageRun` through the `(created_at, id)` index, so it costs one index range and
no Python row per run; the runs that have not ended are read through the partial index on
unfinished runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from django.db import IntegrityError, models, transaction
from django.db.models import Count, F, FloatField, Func, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from executions.models import DailyStageStat, DailyStat, Execution, StageRun
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


def seconds_of(total: float | None) -> float:
    """A SUM of Seconds: None when no row counted."""
    return total or 0.0


# What is summed per run and per stage, the same way in the partial days' SQL, the rebuild and
# the rows written as runs end: a run's length counts when it ended with a start and an end; its
# queue time (created → started) when it started; a stage when it ran (start and end) and was
# not reused from an earlier run by a re-run (it did not run again).
TIMED = Q(status__in=TERMINAL, started_at__isnull=False, finished_at__isnull=False)
STARTED = Q(started_at__isnull=False)


class Seconds(Func):
    """`end - start` in seconds (float), computed by the database itself: Django's duration
    arithmetic on SQLite calls back into Python for every row. Exact to the microsecond on
    both backends (SQLite's own date functions keep milliseconds only, so the fraction is read
    from the stored text, 'YYYY-MM-DD HH:MM:SS[.ffffff]')."""

    output_field = FloatField()

    def __init__(self, end: str, start: str) -> None:
        super().__init__(F(end), F(start))

    def as_sql(  # type: ignore[override]  # PostgreSQL; no function/template to take
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        end, start = (compiler.compile(e) for e in self.source_expressions)
        sql = f"EXTRACT(EPOCH FROM ({end[0]} - {start[0]}))::double precision"
        return sql, [*end[1], *start[1]]

    def as_sqlite(  # type: ignore[override]  # params as a list, as compile() gives them
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        end, start = (compiler.compile(e) for e in self.source_expressions)
        sql = (
            f"((CAST(strftime('%%s', {end[0]}) AS INTEGER)"
            f" - CAST(strftime('%%s', {start[0]}) AS INTEGER))"
            f" + (CAST(substr({end[0]}, 20) AS REAL) - CAST(substr({start[0]}, 20) AS REAL)))"
        )
        return sql, [*end[1], *end[1], *start[1], *start[1]]


def as_rows(queryset: Any) -> Iterable[dict[str, Any]]:
    """The rows of a `values(...).annotate(...)` queryset as plain dicts: their keys come from
    the annotation too, which the type checker's view of `values()` does not know."""
    return cast(Iterable[dict[str, Any]], queryset)


def run_sums() -> dict:
    length = Seconds("finished_at", "started_at")
    queue = Seconds("started_at", "created_at")
    return {
        "n": Count("id"),
        "timed": Count("id", filter=TIMED),
        "seconds": Sum(length, filter=TIMED),
        "queued": Count("id", filter=STARTED),
        "queue": Sum(queue, filter=STARTED),
    }


def stage_sums() -> dict:
    return {"n": Count("id"), "seconds": Sum(Seconds("finished_at", "started_at"))}


def ran(stages: models.QuerySet) -> models.QuerySet:
    """The stage runs whose durations count."""
    return stages.filter(started_at__isnull=False, finished_at__isnull=False).exclude(
        output__has_key="reused_from"
    )


def bump(model: type[models.Model], key: dict, **amounts: float) -> None:
    """Adds `amounts` to the row `key` of a daily table, creating it if needed (a savepoint:
    another run of the same day may insert it first)."""
    rows = model._default_manager
    if rows.filter(**key).update(**{f: F(f) + v for f, v in amounts.items()}):
        return
    try:
        with transaction.atomic():
            rows.create(**key, **amounts)
    except IntegrityError:
        rows.filter(**key).update(**{f: F(f) + v for f, v in amounts.items()})


def record_finished_run(execution_id: int) -> None:
    """Adds a run that just reached a terminal status to its day's DailyStat row, and its stages
    that ran to the DailyStageStat rows. Call inside the transaction that moved it, so the
    counts and the status change commit together; the run is read back there, as the caller's
    copy may predate its start."""
    execution = Execution.objects.only(
        "created_at", "workflow_id", "status", "started_at", "finished_at"
    ).get(pk=execution_id)
    key = {
        "day": day_of(execution.created_at),
        "workflow_id": execution.workflow_id,
        "status": execution.status,
    }
    started, finished = execution.started_at, execution.finished_at
    bump(
        DailyStat,
        key,
        count=1,
        timed_count=1 if started and finished else 0,
        duration_seconds=(finished - started).total_seconds() if started and finished else 0.0,
        queued_count=1 if started else 0,
        queue_seconds=(started - execution.created_at).total_seconds() if started else 0.0,
    )
    stages: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for name, begun, ended in ran(StageRun.objects.filter(execution_id=execution_id)).values_list(
        "name", "started_at", "finished_at"
    ):
        stages[name][0] += 1
        stages[name][1] += (ended - begun).total_seconds()
    for name, (count, seconds) in stages.items():
        bump(DailyStageStat, {**key, "name": name}, count=count, duration_seconds=seconds)


def record_finished_stage(stage_id: int) -> None:
    """A stage ended after its run had ended (a run terminated while a stage was still being
    stopped): its duration joins the run's DailyStageStat row, which record_finished_run wrote
    without it. Call inside the transaction that moved the stage."""
    row = (
        ran(StageRun.objects.filter(pk=stage_id, execution__status__in=TERMINAL))
        .values_list(
            "name",
            "started_at",
            "finished_at",
            "execution__created_at",
            "execution__workflow_id",
            "execution__status",
        )
        .first()
    )
    if row is None:
        return
    name, begun, ended, created, workflow_id, status = row
    key = {"day": day_of(created), "workflow_id": workflow_id, "status": status, "name": name}
    bump(DailyStageStat, key, count=1, duration_seconds=(ended - begun).total_seconds())


def rebuild_daily_stats(
    execution_model: type[Execution] = Execution,
    stat_model: type[DailyStat] = DailyStat,
    stage_model: type[StageRun] = StageRun,
    stage_stat_model: type[DailyStageStat] = DailyStageStat,
) -> int:
    """Recomputes every DailyStat and DailyStageStat row from the history, aggregated by the
    database (a migration, or history loaded without the lifecycle, e.g. bench/history.py);
    returns the number of DailyStat rows written. The models are parameters so a migration can
    pass its historical ones."""
    runs = (
        execution_model.objects.filter(status__in=TERMINAL)
        .order_by()
        .annotate(day=TruncDate("created_at"))
        .values("day", "workflow_id", "status")
        .annotate(**run_sums())
    )
    stages = (
        ran(stage_model.objects.filter(execution__status__in=TERMINAL))
        .order_by()
        .annotate(day=TruncDate("execution__created_at"))
        .values("day", "execution__workflow_id", "execution__status", "name")
        .annotate(**stage_sums())
    )
    stat_rows = [
        stat_model(
            day=row["day"],
            workflow_id=row["workflow_id"],
            status=row["status"],
            count=row["n"],
            timed_count=row["timed"],
            duration_seconds=seconds_of(row["seconds"]),
            queued_count=row["queued"],
            queue_seconds=seconds_of(row["queue"]),
        )
        for row in as_rows(runs)
    ]
    stage_rows = [
        stage_stat_model(
            day=row["day"],
            workflow_id=row["execution__workflow_id"],
            status=row["execution__status"],
            name=row["name"],
            count=row["n"],
            duration_seconds=seconds_of(row["seconds"]),
        )
        for row in as_rows(stages)
    ]
    with transaction.atomic():
        stat_model.objects.all().delete()
        stage_stat_model.objects.all().delete()
        stat_model.objects.bulk_create(stat_rows, batch_size=1000)
        stage_stat_model.objects.bulk_create(stage_rows, batch_size=1000)
    return len(stat_rows)


class Totals:
    """The period's sums as they are read: runs by status and day, run lengths, queue times
    by day, stage durations by name and day."""

    def __init__(self) -> None:
        self.by_status: dict[str, int] = defaultdict(int)
        self.by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.timed, self.seconds = 0, 0.0
        self.queue: dict[str, list] = defaultdict(lambda: [0, 0.0])
        self.stages: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0.0])

    def add_runs(self, day: date, status: str, n: int, timed: int, seconds: float) -> None:
        self.by_status[status] += n
        self.by_day[day.isoformat()][status] += n
        self.timed += timed
        self.seconds += seconds

    def add_queue(self, day: date, n: int, seconds: float) -> None:
        if n:
            self.queue[day.isoformat()][0] += n
            self.queue[day.isoformat()][1] += seconds

    def add_stages(self, day: date, name: str, n: int, seconds: float) -> None:
        self.stages[(day.isoformat(), name)][0] += n
        self.stages[(day.isoformat(), name)][1] += seconds


def execution_stats(workflow_ids: list[int], statuses: list[str] | None, period: str) -> dict:
    """Counts by status and day, success rate and average length (seconds) of the runs of
    `workflow_ids` created in the last `period`, only those in `statuses` when given; their
    queue time and stage durations (queue_and_stage_stats). Always the same six queries,
    whatever the history's size. The workflows are passed as ids, not a join: joined, SQLite
    plans some of these queries as a scan of the workflow's whole history."""
    now = timezone.now()
    since = now - PERIODS[period]
    # Every day after the period's first (partial) one comes from the daily rows, today too:
    # a run that ends today is in its row from then on, so only today's runs still going are
    # missing there. The first day's part inside the period, and every run still going, come
    # from the runs.
    first_whole = day_of(since) + timedelta(days=1)
    totals = Totals()
    stats = DailyStat.objects.filter(workflow_id__in=workflow_ids)
    stage_stats = DailyStageStat.objects.filter(workflow_id__in=workflow_ids)
    if statuses is not None:
        stats = stats.filter(status__in=statuses)
        stage_stats = stage_stats.filter(status__in=statuses)

    whole = {"day__gte": first_whole}
    for row in as_rows(
        stats.filter(**whole)
        .values("day", "status")
        .annotate(
            n=Sum("count"),
            timed=Sum("timed_count"),
            seconds=Sum("duration_seconds"),
            queued=Sum("queued_count"),
            queue=Sum("queue_seconds"),
        )
        .order_by()
    ):
        totals.add_runs(row["day"], row["status"], row["n"], row["timed"], row["seconds"])
        totals.add_queue(row["day"], row["queued"], row["queue"])
    for row in as_rows(
        stage_stats.filter(**whole)
        .values("day", "name")
        .annotate(n=Sum("count"), seconds=Sum("duration_seconds"))
        .order_by()
    ):
        totals.add_stages(row["day"], row["name"], row["n"], row["seconds"])

    # The first day's part, summed by the database per workflow and kept for the wanted ones
    # here (at most workflows x statuses rows): filtered on the period alone, both backends
    # read it through the (created_at, id) index, whatever their statistics say (SQLite
    # without ANALYZE otherwise walks each workflow's whole history). The cost is that of an
    # index range of at most a day, with no Python row per run.
    wanted = set(workflow_ids)
    first_day = day_of(since)
    partial = Execution.objects.filter(created_at__gte=since, created_at__lt=start_of(first_whole))
    if statuses is not None:
        partial = partial.filter(status__in=statuses)
    partial = partial.order_by()
    for row in as_rows(partial.values("workflow_id", "status").annotate(**run_sums())):
        if row["workflow_id"] in wanted:
            totals.add_runs(
                first_day, row["status"], row["n"], row["timed"], seconds_of(row["seconds"])
            )
            totals.add_queue(first_day, row["queued"], seconds_of(row["queue"]))
    for row in as_rows(
        ran(StageRun.objects.filter(execution_id__in=partial.values("pk")))
        .order_by()
        .values("execution__workflow_id", "name")
        .annotate(**stage_sums())
    ):
        if row["execution__workflow_id"] in wanted:
            totals.add_stages(first_day, row["name"], row["n"], seconds_of(row["seconds"]))

    # Runs after the first day that have not ended, and their stages: few, read by status alone
    # (the partial index) and narrowed here. Always these two queries, whatever the period.
    lo = start_of(first_whole)
    # Their ids through the (status, created_at, id) index alone, then the rows by key: asked
    # for the rows directly, SQLite's statistics (a status holds a quarter of the runs, on
    # average) make it scan the table.
    unfinished = Execution.objects.filter(status__in=UNFINISHED).order_by().values("pk")
    going: dict[int, tuple[date, str]] = {}
    for pk, workflow_id, created, status, started in Execution.objects.filter(
        pk__in=unfinished
    ).values_list("pk", "workflow_id", "created_at", "status", "started_at"):
        if workflow_id in wanted and lo <= created and (statuses is None or status in statuses):
            going[pk] = (day_of(created), status)
            totals.add_runs(day_of(created), status, 1, 0, 0.0)
            if started:
                totals.add_queue(day_of(created), 1, (started - created).total_seconds())
    for execution_id, name, begun, ended in ran(
        StageRun.objects.filter(execution_id__in=unfinished.values("pk"))
    ).values_list("execution_id", "name", "started_at", "finished_at"):
        if execution_id in going:
            totals.add_stages(going[execution_id][0], name, 1, (ended - begun).total_seconds())

    # Every run that has ended counts: a rejected, terminated or errored run did not succeed
    # (the summary once left them out and read 100% next to a chart that showed them).
    by_status = totals.by_status
    ended = sum(n for s, n in by_status.items() if s in TERMINAL)
    return {
        "period": period,
        "since": since.isoformat(),
        "total": sum(by_status.values()),
        "ended": ended,
        "by_status": {s.value: by_status.get(s.value, 0) for s in ExecutionStatus},
        "success_rate": round(by_status.get(ExecutionStatus.SUCCEEDED, 0) / ended, 4)
        if ended
        else None,
        "average_duration_seconds": round(totals.seconds / totals.timed, 3)
        if totals.timed
        else None,
        "by_day": [{"day": day, **totals.by_day[day]} for day in sorted(totals.by_day)],
        **queue_and_stage_stats(totals),
    }


def average(n: int, seconds: float) -> float | None:
    return round(seconds / n, 3) if n else None


def queue_and_stage_stats(totals: Totals) -> dict:
    """Queue time (created → started) on average and per day, and each stage's average
    duration per day, with the slowest stage (highest average) over the period, in seconds.
    Stages a re-run reused are left out: they did not run again."""
    queued = sum(n for n, _ in totals.queue.values())
    queue_seconds = sum(s for _, s in totals.queue.values())
    by_stage: dict[str, dict[str, float | None]] = {}
    overall_sums: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for (day, name), (n, seconds) in sorted(totals.stages.items()):
        by_stage.setdefault(name, {})[day] = average(n, seconds)
        overall_sums[name][0] += n
        overall_sums[name][1] += seconds
    overall = {name: average(n, seconds) for name, (n, seconds) in overall_sums.items()}
    slowest = max(overall.items(), key=lambda item: item[1] or 0, default=(None, None))
    return {
        "queue_average_seconds": average(queued, queue_seconds),
        "queue_by_day": [
            {"day": day, "average_seconds": average(*totals.queue[day])}
            for day in sorted(totals.queue)
        ],
        "stage_average_seconds": overall,
        "stage_by_day": by_stage,
        "slowest_stage": None
        if slowest[0] is None
        else {"name": slowest[0], "average_seconds": slowest[1]},
    }
