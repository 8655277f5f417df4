"""Retention: runs (with their stages, logs, reports and releases) older than
RUN_RETENTION_DAYS are deleted by a scheduled django-q2 task, a batch per transaction.

One DELETE of a year of history would hold the write lock (SQLite) or a long transaction
(PostgreSQL) for minutes; batches of RETENTION_BATCH_SIZE runs each commit on their own, so runs
go on starting and finishing in between. Kept whatever their age: runs that have not ended, and
runs whose release an environment runs now (what-runs-where and rollback need them). The daily
statistics are kept: analytics still counts the runs that were deleted.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_q.models import Schedule

from executions.models import Execution, LogChunk, Release
from executions.status import TERMINAL

TASK = "executions.retention.purge_expired_runs"
SCHEDULE_NAME = "workflows-retention"


def expired_runs(days: int) -> QuerySet[Execution]:
    """Runs created more than `days` days ago that may be deleted, oldest first."""
    cutoff = timezone.now() - timedelta(days=days)
    current = Release.objects.filter(is_current=True).values("execution_id")
    return (
        Execution.objects.filter(created_at__lt=cutoff, status__in=TERMINAL)
        .exclude(pk__in=current)
        .order_by("created_at", "id")
    )


def purge_expired_runs(
    days: int | None = None, batch_size: int | None = None, time_budget: float = 60.0
) -> dict[str, int]:
    """The scheduled task. Deletes expired runs a batch at a time, each batch in its own
    transaction, until none is left or `time_budget` seconds have passed (the next schedule goes
    on). Returns {"runs": deleted, "batches": transactions, "log_chunks": deleted}. Nothing is
    deleted when the retention is 0 (the default: keep everything)."""
    refresh_planner_statistics()
    days = settings.RUN_RETENTION_DAYS if days is None else days
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    done = {"runs": 0, "batches": 0, "log_chunks": 0}
    if days <= 0:
        return done
    started = time.monotonic()
    while time.monotonic() - started < time_budget:
        ids = list(expired_runs(days).values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            # Nothing refers to log chunks, so Django deletes them with one set-based DELETE.
            done["log_chunks"] += LogChunk.objects.filter(execution_id__in=ids).delete()[0]
            Execution.objects.filter(pk__in=ids).delete()
        done["runs"] += len(ids)
        done["batches"] += 1
    return done


def refresh_planner_statistics() -> None:
    """SQLite only: refreshes the query planner's statistics (`sqlite_stat1`), each hour with
    the retention task. Without them SQLite plans the history's lists and what-runs-where from
    guesses; at 1,000,000 runs `GET /api/releases/what-runs-where/` took 162 ms instead of 9 ms
    (bench/history.py). `analysis_limit` samples about that many rows per index, so this costs
    milliseconds whatever the size of the history (https://sqlite.org/lang_analyze.html).
    PostgreSQL's autovacuum keeps its statistics itself."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA analysis_limit=10000")
        cursor.execute("ANALYZE")


def ensure_schedule(**_kwargs: object) -> None:
    """Registers the hourly retention task with django-q2 (after every `migrate`)."""
    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": TASK, "schedule_type": Schedule.HOURLY, "repeats": -1},
    )
