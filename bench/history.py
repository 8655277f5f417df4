"""History at scale: the same requests against 1,000 runs and against N runs (default
1,000,000), on SQLite and on PostgreSQL, with p50/p95 per request, their ratio, and the number of
queries at both sizes (issue 16, part 1; goal: p95 <= 150 ms at 1,000,000 runs, analytics
<= 500 ms, and the same number of queries at both sizes).

Each database is seeded once and kept for later runs (SQLite files under .run/bench-history/,
PostgreSQL databases `bench_history_<N>` on the test cluster that `scripts/services start --test`
runs): 50 App CD workflows over 10 services and 3 environments, runs spread over 180 days with 4
stage runs each, a release for 4 runs in 5. The rows are inserted in bulk (not through the
lifecycle), then the daily statistics and the current releases are rebuilt by the product's own
functions. The requests go through Django's test client in this process (no HTTP server), as an
administrator who sees every project, 20 times each after 2 warm-ups.

    .venv/bin/python bench/history.py                       # 1,000 and 1,000,000 runs, both
    .venv/bin/python bench/history.py --runs 100000 --backend sqlite
    .venv/bin/python bench/history.py --reseed              # drop the kept databases first

PostgreSQL is reached at $BENCH_POSTGRES_URL, else scripts/services' test cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "bench-history"
SMALL = 1_000
PG_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    "postgres://workflows:workflows-test-password@127.0.0.1:5433/postgres",
)
WORKFLOWS, SERVICES, DAYS = 50, 10, 180
ENDINGS = ["succeeded"] * 7 + ["failed", "failed", "error", "terminated"]


def database_url(backend: str, runs: int) -> str:
    if backend == "sqlite":
        return f"sqlite:///{RUN_DIR / f'history-{runs}.sqlite3'}"
    return PG_URL.rsplit("/", 1)[0] + f"/bench_history_{runs}"


# --- the child: one backend, one size ------------------------------------------------------


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atmosly.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def insert(cursor, table: str, columns: list[str], rows: list[tuple]) -> None:
    """Bulk rows: COPY on PostgreSQL (several times faster than batched INSERTs there),
    executemany elsewhere."""
    if cursor.db.vendor == "postgresql":
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join(["%s"] * len(columns))
    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def seed(runs: int) -> float:
    """Project, services, workflows, then `runs` runs with stages and releases in bulk."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.utils import timezone

    from executions.analytics import rebuild_daily_stats
    from executions.models import Release
    from tests import base

    started = time.monotonic()
    users = base.make_users()
    project = base.make_project(users)
    environments = base.make_environments(project)
    base.make_registry(project)
    workflows = []
    for s in range(SERVICES):
        service = base.make_service(project, name=f"svc-{s}")
        for w in range(WORKFLOWS // SERVICES):
            doc = base.app_cd_document(name=f"deliver-{w}")
            workflows.append(base.save_document(service, doc))
    User.objects.create_superuser("bench", "bench@example.org", "bench")
    now, rng = timezone.now(), random.Random(16)
    numbers = dict.fromkeys((w.pk for w in workflows), 0)
    batch = 20_000
    next_id = 1
    # The backend's own stored form of a datetime (naive UTC text on SQLite).
    dt = connection.ops.adapt_datetimefield_value
    for first in range(0, runs, batch):
        execs, stages, releases = [], [], []
        for pk in range(next_id, next_id + min(batch, runs - first)):
            workflow = workflows[rng.randrange(len(workflows))]
            numbers[workflow.pk] += 1
            created = now - timedelta(seconds=rng.randrange(DAYS * 86400))
            status = rng.choice(ENDINGS)
            begun, ended = (
                created + timedelta(seconds=1),
                created + timedelta(seconds=rng.randrange(30, 900)),
            )
            sha = f"{rng.getrandbits(160):040x}"
            execs.append(
                (
                    pk,
                    workflow.pk,
                    numbers[workflow.pk],
                    "webhook",
                    "main",
                    "main",
                    sha,
                    status,
                    dt(created),
                    dt(begun),
                    dt(ended),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                )
            )
            for position, (kind, name) in enumerate(
                [("source", "Source"), ("build", "Build"), ("push", "Push"), ("deploy", "Deploy")]
            ):
                stages.append(
                    (pk, position, kind, name, "succeeded", "", "{}", dt(begun), dt(ended))
                )
            if rng.random() < 0.8:
                environment = environments[rng.randrange(len(environments))]
                releases.append(
                    (
                        environment.pk,
                        workflow.service_id,
                        workflow.pk,
                        pk,
                        f"127.0.0.1:5000/demo/web:{sha[:12]}",
                        "",
                        sha,
                        dt(ended),
                        False,
                        "kubernetes",
                        "{}",
                        False,
                    )
                )
        next_id += len(execs)
        with transaction.atomic(), connection.cursor() as cursor:
            insert(
                cursor,
                "executions_execution",
                [
                    "id",
                    "workflow_id",
                    "number",
                    "trigger",
                    "branch",
                    "ref",
                    "commit_sha",
                    "status",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "trigger_detail",
                    "actor_login",
                    "actor_email",
                    "commit_message",
                    "image",
                    "image_digest",
                    "status_reason",
                    "worker_id",
                    "tag",
                    "ref_kind",
                    "triggered_by_id",
                ],
                [(*row[:-1], "", "branch", None) for row in execs],
            )
            insert(
                cursor,
                "executions_stagerun",
                [
                    "execution_id",
                    "position",
                    "kind",
                    "name",
                    "status",
                    "error",
                    "output",
                    "started_at",
                    "finished_at",
                ],
                stages,
            )
            insert(
                cursor,
                "executions_release",
                [
                    "environment_id",
                    "service_id",
                    "workflow_id",
                    "execution_id",
                    "image",
                    "image_digest",
                    "commit_sha",
                    "created_at",
                    "is_rollback",
                    "target",
                    "details",
                    "is_current",
                ],
                releases,
            )
        print(f"  seeded {next_id - 1:,} runs", file=sys.stderr, flush=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('executions_execution', 'id'), %s)",
                [next_id],
            )
            cursor.execute("ANALYZE")
    rebuild_daily_stats()
    for environment in environments:
        for workflow in workflows:
            newest = (
                Release.objects.filter(environment=environment, workflow=workflow)
                .order_by("-created_at", "-id")
                .values_list("pk", flat=True)
                .first()
            )
            Release.objects.filter(pk=newest).update(is_current=True)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return time.monotonic() - started


def requests_to_time(runs: int) -> list[tuple[str, str]]:
    from atmosly.pagination import encode_cursor
    from executions.models import Execution
    from workflows.models import Service, Workflow

    deep = Execution.objects.order_by("-created_at", "-id")[int(runs * 0.9)]
    service = Service.objects.order_by("pk").first()
    workflow = Workflow.objects.order_by("pk").first()
    execution = Execution.objects.order_by("-id").first()
    return [
        ("home `/`", "/"),
        ("`GET /api/executions/` first page", "/api/executions/"),
        (
            "`GET /api/executions/` at 90 % depth (cursor)",
            f"/api/executions/?cursor={encode_cursor('n', deep)}",
        ),
        ("`GET /api/executions/?status=failed`", "/api/executions/?status=failed"),
        ("`GET /api/executions/stats/` 24 h", "/api/executions/stats/?period=24h"),
        ("`GET /api/executions/stats/` 90 d", "/api/executions/stats/?period=90d"),
        ("analytics page", "/analytics/"),
        ("admin executions changelist", "/admin/executions/execution/"),
        ("admin changelist, failed", "/admin/executions/execution/?status__exact=failed"),
        (
            "`GET /api/releases/what-runs-where/`",
            f"/api/releases/what-runs-where/?service={service.pk}",
        ),
        ("`GET /api/releases/?service=`", f"/api/releases/?service={service.pk}"),
        ("a workflow page", f"/workflows/{workflow.pk}/"),
        ("an execution page", f"/executions/{execution.pk}/"),
    ]


def measure(repeat: int) -> dict:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from executions.models import Execution

    runs = Execution.objects.count()
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    out = {}
    for label, url in requests_to_time(runs):
        for _ in range(2):
            assert client.get(url).status_code == 200, url
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, url
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        times.sort()
        out[label] = {
            "p50": statistics.median(times),
            "p95": times[max(0, round(0.95 * len(times)) - 1)],
            "queries": len(queries),
        }
    return {"runs": runs, "requests": out, "load": os.getloadavg()[0]}


def renumber_kept_database() -> None:
    """Databases seeded before the history migration became 0007 (it was 0006, next to
    0006_ref_names_whole_and_ref_kind) record it under its old name: apply the ref migration
    and record the history one under its new name (same operations), so kept seeds stay usable."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    old, new = (
        "0006_history_indexes_daily_stats_current_release",
        "0007_history_indexes_daily_stats_current_release",
    )
    if not MigrationRecorder(connection).has_table():
        return
    records = MigrationRecorder.Migration.objects.filter(app="executions")
    if not records.filter(name=old).exists():
        return
    print("  renumbering the history migration (0006 -> 0007)", file=sys.stderr, flush=True)
    records.filter(name=old).delete()
    call_command("migrate", "executions", "0006_ref_names_whole_and_ref_kind", verbosity=0)
    records.create(app="executions", name=new)
    restore_missing_indexes()


def restore_missing_indexes() -> None:
    """SQLite rebuilds a table to alter a column, with the indexes of the migration state it
    alters from: 0006_ref_names run after the history indexes existed dropped them. Creates
    each index and constraint of the executions models the database lacks, then ANALYZE."""
    from django.apps import apps
    from django.db import connection

    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        for model in apps.get_app_config("executions").get_models():
            if model._meta.db_table not in tables:
                continue  # a later migration creates it
            have = connection.introspection.get_constraints(cursor, model._meta.db_table)
            with connection.schema_editor() as editor:
                for index in model._meta.indexes:
                    if index.name not in have:
                        print(f"  restoring index {index.name}", file=sys.stderr, flush=True)
                        editor.add_index(model, index)
                for constraint in model._meta.constraints:
                    if constraint.name not in have:
                        print(f"  restoring {constraint.name}", file=sys.stderr, flush=True)
                        editor.add_constraint(model, constraint)
        if connection.vendor == "sqlite":
            cursor.execute("ANALYZE")


def child(backend: str, runs: int, repeat: int) -> None:
    url = database_url(backend, runs)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection

    renumber_kept_database()
    call_command("migrate", verbosity=0)
    from executions.models import Execution

    seconds = None
    if not Execution.objects.exists():
        print(f"[{backend}] seeding {runs:,} runs", file=sys.stderr, flush=True)
        seconds = seed(runs)
    result = measure(repeat)
    result["seed_seconds"] = seconds
    result["vendor"] = connection.vendor
    print(json.dumps(result))


# --- the parent: both sizes, both backends, one table ------------------------------------


def prepare(backend: str, runs: int, reseed: bool) -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        path = RUN_DIR / f"history-{runs}.sqlite3"
        if reseed:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    name = f"bench_history_{runs}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        if reseed:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')


def run_child(backend: str, runs: int, repeat: int) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            backend,
            "--runs",
            str(runs),
            "--repeat",
            str(repeat),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(backend: str, small: dict, large: dict) -> str:
    lines = [
        f"### {backend}: {small['runs']:,} vs {large['runs']:,} runs "
        f"(load average {small['load']:.1f} / {large['load']:.1f})",
        "",
        f"| request | p50 / p95 at {small['runs']:,} | p50 / p95 at {large['runs']:,} "
        "| ratio p95 | queries |",
        "|---|---|---|---|---|",
    ]
    for label, s in small["requests"].items():
        big = large["requests"][label]
        queries = (
            str(s["queries"])
            if s["queries"] == big["queries"]
            else f"{s['queries']} → {big['queries']}"
        )
        lines.append(
            f"| {label} | {s['p50']:.1f} / {s['p95']:.1f} ms | {big['p50']:.1f} / "
            f"{big['p95']:.1f} ms | {big['p95'] / s['p95']:.2f}x | {queries} |"
        )
    if large.get("seed_seconds"):
        lines.append(f"\nSeeding {large['runs']:,} runs took {large['seed_seconds']:.0f} s.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="the large history size")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs, args.repeat)
        return 0
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        results = []
        for runs in (SMALL, args.runs):
            prepare(backend, runs, args.reseed)
            results.append(run_child(backend, runs, args.repeat))
        print(table(backend, *results), flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
