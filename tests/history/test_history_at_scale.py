"""History at scale (issue 16, part 1): the same number of queries at any history size, keyset
pagination that neither skips nor repeats, daily statistics equal to a recomputation from the
runs, "what runs where" from the current-release rows, and retention in batches."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions.analytics import PERIODS, rebuild_daily_stats
from executions.models import DailyStat, Execution, LogChunk, Release, StageKind, StageRun
from executions.releases import do_record_release
from executions.retention import SCHEDULE_NAME, TASK, purge_expired_runs
from executions.services import do_change_status
from executions.status import TERMINAL, ExecutionStatus
from tests.base import client_for

pytestmark = pytest.mark.django_db
S = ExecutionStatus
ENDINGS = [S.SUCCEEDED, S.SUCCEEDED, S.SUCCEEDED, S.FAILED, S.ERROR, S.TERMINATED]


def seed_runs(workflow, n: int, *, start: int = 1, days: int = 100, user=None) -> list[int]:
    """`n` runs spread over `days` days, mostly ended, with one stage each; the daily
    statistics are rebuilt as for history loaded without the lifecycle."""
    now = timezone.now()
    rng = random.Random(n)
    runs = []
    for number in range(start, start + n):
        created = now - timedelta(seconds=rng.randrange(days * 86400 + 1))
        status = rng.choice([*ENDINGS, S.RUNNING]) if number % 7 else S.APPROVAL_PENDING
        runs.append(
            Execution(
                workflow=workflow,
                number=number,
                status=status,
                triggered_by=user,
                started_at=created + timedelta(seconds=2),
                finished_at=created + timedelta(seconds=rng.randrange(5, 600))
                if status in TERMINAL
                else None,
            )
        )
    made = Execution.objects.bulk_create(runs)
    for run in made:  # auto_now_add ignores a value given at creation
        run.created_at = run.started_at - timedelta(seconds=2)
    Execution.objects.bulk_update(made, ["created_at"])
    StageRun.objects.bulk_create(
        StageRun(execution=run, position=0, kind=StageKind.SOURCE, name="Source") for run in made
    )
    rebuild_daily_stats()
    return [run.pk for run in made]


def record_releases(workflow, environments, count: int) -> None:
    """`count` successful deploys through the recording service function, round the
    environments."""
    runs = Execution.objects.filter(workflow=workflow).exclude(stages__kind=StageKind.DEPLOY)
    for i, run in enumerate(runs.order_by("id")[:count]):
        stage = StageRun.objects.create(
            execution=run, position=1, kind=StageKind.DEPLOY, name="Deploy"
        )
        do_record_release(
            stage=stage,
            environment=environments[i % len(environments)],
            workflow=workflow,
            image=f"127.0.0.1:5000/demo/web:{i}",
            digest=f"sha256:{i:064x}",
            commit=f"{i:040x}",
            target="kubernetes",
            details={},
        )


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured)


def admin_client(client, users):
    users["alice"].is_staff = users["alice"].is_superuser = True
    users["alice"].save()
    client.force_login(users["alice"])
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/workflows/{workflow}/",
        "/api/executions/",
        "/api/executions/?status=failed,error",
        "/api/executions/stats/?period=90d",
        "/api/executions/stats/?period=24h",
        "/api/releases/?service={service}",
        "/api/releases/what-runs-where/?service={service}",
        "/services/{service}/where/",
        "/admin/executions/execution/",
        "/admin/executions/execution/?status__exact=failed",
    ],
)
def test_the_same_queries_at_small_and_larger_history(
    url, workflow, environments, users, client, django_assert_num_queries
):
    url = url.format(workflow=workflow.pk, service=workflow.service_id)
    browser = admin_client(client, users)
    api = client_for(users["alice"])
    get = browser if not url.startswith("/api/") else api

    seed_runs(workflow, 6, user=users["bob"])
    record_releases(workflow, environments, 3)
    small = queries_for(get, url)

    seed_runs(workflow, 240, start=7, user=users["carol"])
    record_releases(workflow, environments, 40)
    with django_assert_num_queries(small):
        response = get.get(url)
    assert response.status_code == 200


def walk(client, url: str) -> list[int]:
    seen = []
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.content
        body = page.json()
        assert "count" not in body  # no COUNT per request
        seen += [run["id"] for run in body["results"]]
        url = body["next"]
    return seen


def test_keyset_pages_neither_skip_nor_repeat(workflow, users):
    ids = seed_runs(workflow, 90)
    # Ties on created_at (runs created in the same microsecond, e.g. a burst) must not make a
    # page boundary skip or repeat one.
    tied = timezone.now() - timedelta(days=3)
    Execution.objects.filter(pk__in=ids[:30]).update(created_at=tied)
    newest_first = list(
        Execution.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    )
    client = client_for(users["carol"])
    assert walk(client, "/api/executions/?limit=7") == newest_first

    # A run started while someone pages does not shift the pages they have not read yet.
    first = client.get("/api/executions/?limit=10").json()
    seed_runs(workflow, 1, start=1000, days=0)
    rest = walk(client, first["next"])
    assert [r["id"] for r in first["results"]] + rest == newest_first

    # `previous` goes back to exactly the page before.
    second = client.get(first["next"]).json()
    back = client.get(second["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]


def test_keyset_filters_and_bad_cursor(workflow, users):
    seed_runs(workflow, 40)
    client = client_for(users["carol"])
    failed = walk(client, "/api/executions/?status=failed&limit=3")
    assert failed == list(
        Execution.objects.filter(status=S.FAILED)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    bad = client.get("/api/executions/?cursor=not-a-cursor")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "cursor"


def test_pages_go_back_in_history_by_cursor(workflow, users, client):
    seed_runs(workflow, 45)
    client.force_login(users["carol"])
    newest_first = list(
        Execution.objects.order_by("-created_at", "-id").values_list("number", flat=True)
    )
    # The workflow page pages by cursor (the dashboard's runs list has its own cursor; see
    # tests/workflows/test_dashboard.py).
    first = f"/workflows/{workflow.pk}/"
    url, numbers = first, []
    while url:
        page = client.get(url)
        assert page.status_code == 200
        numbers += [e.number for e in page.context["executions"]]
        url = page.context["older"]
    assert numbers == newest_first
    assert client.get(f"{first}?cursor=garbage").status_code == 400


def reference_stats(period: str, **filters) -> dict:
    """The analytics answer recomputed from every run, the slow way."""
    since = timezone.now() - PERIODS[period]
    runs = Execution.objects.filter(created_at__gte=since, **filters)
    by_status: dict[str, int] = defaultdict(int)
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    lengths = []
    for run in runs:
        by_status[run.status] += 1
        by_day[timezone.localtime(run.created_at).date().isoformat()][run.status] += 1
        if run.started_at and run.finished_at:
            lengths.append((run.finished_at - run.started_at).total_seconds())
    ended = sum(by_status[s] for s in TERMINAL)
    return {
        "total": sum(by_status.values()),
        "by_status": {s.value: by_status.get(s.value, 0) for s in S},
        "success_rate": round(by_status[S.SUCCEEDED] / ended, 4) if ended else None,
        "average_duration_seconds": round(sum(lengths) / len(lengths), 3) if lengths else None,
        "by_day": [{"day": d, **by_day[d]} for d in sorted(by_day)],
    }


def finish_through_the_lifecycle(workflow, n: int) -> None:
    """Runs created over 100 days that start and end through do_change_status, as the engine
    does: the daily statistics are only written there."""
    now, rng = timezone.now(), random.Random(7)
    for number in range(1, n + 1):
        run = Execution.objects.create(workflow=workflow, number=number)
        Execution.objects.filter(pk=run.pk).update(
            created_at=now - timedelta(seconds=rng.randrange(100 * 86400))
        )
        run.refresh_from_db()
        do_change_status(run, S.RUNNING)
        if number % 5:
            do_change_status(run, rng.choice([S.SUCCEEDED, S.FAILED, S.ERROR]))
        elif number % 10:
            do_change_status(run, S.TERMINATING)
            do_change_status(run, S.TERMINATED)


def test_daily_statistics_equal_a_recomputation(workflow, users):
    finish_through_the_lifecycle(workflow, 120)
    assert DailyStat.objects.exists()
    client = client_for(users["carol"])
    for period in PERIODS:
        answer = client.get(f"/api/executions/stats/?period={period}").json()
        assert {k: answer[k] for k in reference_stats(period)} == reference_stats(period), period
    answer = client.get(
        f"/api/executions/stats/?period=90d&workflow={workflow.pk}&status=failed,error"
    ).json()
    expected = reference_stats("90d", workflow=workflow, status__in=[S.FAILED, S.ERROR])
    assert {k: answer[k] for k in expected} == expected
    # And what the lifecycle wrote is what a rebuild from the history writes.
    written = sorted(DailyStat.objects.values_list("day", "status", "count", "timed_count"))
    rebuild_daily_stats()
    assert sorted(DailyStat.objects.values_list("day", "status", "count", "timed_count")) == (
        written
    )


def test_what_runs_where_reads_the_current_rows(workflow, environments, users):
    seed_runs(workflow, 12)
    record_releases(workflow, environments, 9)
    newest = {
        env.pk: Release.objects.filter(environment=env).order_by("-created_at", "-id").first()
        for env in environments
    }
    assert Release.objects.filter(is_current=True).count() == len(environments)
    answer = client_for(users["carol"]).get(
        f"/api/releases/what-runs-where/?service={workflow.service_id}"
    )
    where = {row["environment_id"]: row["releases"] for row in answer.json()["where"]}
    for env in environments:
        assert [r["id"] for r in where[env.pk]] == [newest[env.pk].pk]


def test_retention_deletes_in_batches_and_keeps_what_is_needed(workflow, environments, settings):
    old = seed_runs(workflow, 25, days=1)
    Execution.objects.filter(pk__in=old).update(
        created_at=timezone.now() - timedelta(days=40), status=S.SUCCEEDED
    )
    for run in Execution.objects.filter(pk__in=old):
        LogChunk.objects.create(execution=run, stage_run=run.stages.first(), seq=0, text="line\n")
    still_going, deployed = old[0], old[1]
    Execution.objects.filter(pk=still_going).update(status=S.APPROVAL_PENDING)
    record_releases(workflow, environments[:1], 2)  # runs old[0] and old[1]; old[1] is current
    recent = seed_runs(workflow, 5, start=100, days=10)

    settings.RUN_RETENTION_DAYS = 30
    settings.RETENTION_BATCH_SIZE = 10
    blocks = []

    def note_block(execute, sql, params, many, context):
        if sql.startswith('DELETE FROM "executions_execution"'):
            # The test itself runs in a transaction, so each atomic block of the task is a
            # savepoint here: its id says which block the DELETE ran in.
            blocks.append(tuple(connection.savepoint_ids))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note_block):
        done = purge_expired_runs()
    assert done == {"runs": 23, "batches": 3, "log_chunks": 23}
    assert len(blocks) == 3 and len(set(blocks)) == 3  # a transaction per batch, not one
    left = set(Execution.objects.values_list("pk", flat=True))
    assert left == {still_going, deployed, *recent}
    assert LogChunk.objects.count() == 2
    assert purge_expired_runs() == {"runs": 0, "batches": 0, "log_chunks": 0}


def test_retention_off_by_default_and_scheduled(workflow, settings):
    seed_runs(workflow, 3)
    Execution.objects.update(created_at=timezone.now() - timedelta(days=4000))
    assert settings.RUN_RETENTION_DAYS == 0
    assert purge_expired_runs()["runs"] == 0
    assert Execution.objects.count() == 3
    from django_q.models import Schedule

    Schedule.objects.filter(name=SCHEDULE_NAME).delete()
    call_command("migrate", verbosity=0)  # every migrate (re)registers the task
    assert Schedule.objects.get(name=SCHEDULE_NAME).func == TASK


def test_the_hourly_task_keeps_sqlites_planner_statistics(workflow):
    """Without `sqlite_stat1` SQLite plans the history's queries from guesses (what-runs-where
    162 ms instead of 9 ms at 1,000,000 runs): the hourly task refreshes them, retention on or
    off. PostgreSQL's autovacuum analyzes by itself."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL keeps its statistics with autovacuum")
    seed_runs(workflow, 5)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone():
            cursor.execute("DELETE FROM sqlite_stat1")
    purge_expired_runs()  # retention off (the default): statistics all the same
    with connection.cursor() as cursor:
        cursor.execute("SELECT idx FROM sqlite_stat1 WHERE tbl = 'executions_execution'")
        indexes = {row[0] for row in cursor.fetchall()}
    assert {"execution_newest", "execution_workflow_newest"} <= indexes, indexes
