"""The dashboard and the runs list at 1,000 and at N runs (default 1,000,000), on SQLite and on
PostgreSQL: p50/p95 per page, the p95 ratio, and the number of queries at both sizes (issue 15:
p95 < 150 ms at 1,000,000 runs and the same number of queries at both sizes).

Each database is seeded once and kept (SQLite files under .run/bench-dash/, PostgreSQL databases
`bench_dash_<N>` on the test cluster of `scripts/services start --test`; `--reseed` starts
again): 50 workflows in 5 projects of 2 services, runs spread over 365 days, inserted in bulk
(executemany on SQLite, COPY on PostgreSQL) with mixed statuses, branches, triggers and users.
Pages go through Django's test client in the benchmark's process (no HTTP server: the view's,
the template's and the database's time), as bob, a Developer member of every project (not a superuser), 2
warm-ups then `--samples` timed requests each.

    .venv/bin/python bench/dashboard.py                      # 1,000 and 1,000,000, both
    .venv/bin/python bench/dashboard.py --runs 200000 --backend sqlite --samples 20

PostgreSQL is reached at $BENCH_POSTGRES_URL, else scripts/services' test cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "bench-dash"
SMALL = 1_000
PG_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    "postgres://workflows:workflows-test-password@127.0.0.1:5433/postgres",
)
PROJECTS, SERVICES_PER_PROJECT, WORKFLOWS_PER_SERVICE, DAYS = 5, 2, 5, 365
STATUSES = ["succeeded"] * 14 + ["failed"] * 3 + ["error", "terminated", "approval_rejected"]
TRIGGERS = ["webhook"] * 7 + ["manual"] * 2 + ["api"]
COLUMNS = [
    "id",
    "workflow_id",
    "number",
    "trigger",
    "triggered_by_id",
    "branch",
    "tag",
    "ref",
    "ref_kind",
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
]


def database_url(backend: str, runs: int) -> str:
    if backend == "sqlite":
        return f"sqlite:///{RUN_DIR / f'dash-{runs}.sqlite3'}"
    return PG_URL.rsplit("/", 1)[0] + f"/bench_dash_{runs}"


# --- the child: one backend, one size ------------------------------------------------------


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atmosly.settings")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(runs: int) -> float:
    """Users, projects, services, workflows, then `runs` runs in bulk, oldest first."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.utils import timezone

    from tests import base

    started = time.monotonic()
    users = base.make_users()
    viewer = User.objects.create_user("bench", "bench@example.org", "bench")
    workflows = []
    for p in range(PROJECTS):
        project = base.make_project(users, name=f"project-{p}")
        project.members.add(viewer)
        base.make_environments(project)
        base.make_registry(project)
        for s in range(SERVICES_PER_PROJECT):
            service = base.make_service(project, name=f"svc-{p}-{s}")
            for w in range(WORKFLOWS_PER_SERVICE):
                doc = base.app_cd_document(name=f"deliver-{w}")
                workflows.append(base.save_document(service, doc).pk)
    people = [u.pk for u in users.values()] + [viewer.pk]
    rng = random.Random(15)
    now = timezone.now()
    step = DAYS * 86400 / runs
    numbers = dict.fromkeys(workflows, 0)
    dt = connection.ops.adapt_datetimefield_value
    batch = 50_000
    for first in range(0, runs, batch):
        rows = []
        for pk in range(first + 1, min(first + batch, runs) + 1):
            workflow = workflows[rng.randrange(len(workflows))]
            numbers[workflow] += 1
            created = now - timedelta(seconds=(runs - pk) * step + 60)
            trigger = rng.choice(TRIGGERS)
            branch = "main" if rng.random() < 0.9 else f"feature/{rng.randrange(500)}"
            sha = f"{rng.getrandbits(160):040x}"
            ended = created + timedelta(seconds=rng.randrange(30, 900))
            rows.append(
                (
                    pk,
                    workflow,
                    numbers[workflow],
                    trigger,
                    people[rng.randrange(len(people))] if trigger == "manual" else None,
                    branch,
                    "",
                    branch,
                    "branch",
                    sha,
                    rng.choice(STATUSES),
                    dt(created),
                    dt(created + timedelta(seconds=2)),
                    dt(ended),
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
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                raw = cursor.cursor  # psycopg's own cursor: COPY is several times executemany
                with raw.copy(f"COPY executions_execution ({', '.join(COLUMNS)}) FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(COLUMNS))
                cursor.executemany(
                    f"INSERT INTO executions_execution ({', '.join(COLUMNS)}) VALUES ({marks})",
                    rows,
                )
        print(f"  seeded {first + len(rows):,} runs", file=sys.stderr, flush=True)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('executions_execution', 'id'), %s)",
                [runs + 1],
            )
        cursor.execute("ANALYZE")
    return time.monotonic() - started


def next_page(client, url: str, pages: int) -> str:
    for _ in range(pages):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        html = response.content.decode()
        found = re.search(r'href="([^"]*)" data-testid="runs-next"', html)
        url = "/" + found.group(1).replace("&amp;", "&")
    return url


def api_page(client, url: str, pages: int) -> str:
    for _ in range(pages):
        url = client.get(url).json()["next"].split("testserver", 1)[1]
    return url


def pages_to_time(client) -> list[tuple[str, str]]:
    from django.utils import timezone

    from executions.models import Execution

    workflow = Execution.objects.order_by("-id").values_list("workflow_id", flat=True).first()
    day = timezone.localdate() - timedelta(days=200)
    # A feature branch whose first page holds a run somebody started, at both sizes: Django
    # skips a prefetch when no row of the page has a user, which would count one query less
    # for the shape of the page, not for the size of the history.
    branch = (
        Execution.objects.exclude(branch="main")
        .filter(triggered_by__isnull=False)
        .order_by("-id")
        .values_list("branch")[0][0]
    )
    return [
        ("dashboard `/`", "/"),
        ("runs, 5th page by cursor", next_page(client, "/", 4)),
        ("runs, status=failed", "/?status=failed"),
        ("runs, status=running (none)", "/?status=running"),
        ("runs, one workflow", f"/?workflow={workflow}"),
        ("runs, a feature branch", f"/?branch={branch}"),
        ("runs, trigger=api", "/?trigger=api"),
        ("runs, who=carol", "/?who=carol"),
        ("runs, one day 200 days ago", f"/?since={day}&until={day}"),
        (
            "runs, failed + main, 2nd page",
            next_page(client, "/?status=failed&branch=main", 1),
        ),
        ("`GET /api/executions/`", "/api/executions/"),
        ("`GET /api/executions/` 5th page", api_page(client, "/api/executions/", 4)),
        ("`GET /api/executions/?status=failed`", "/api/executions/?status=failed"),
        ("`GET /api/executions/?branch=` a feature branch", f"/api/executions/?branch={branch}"),
        ("`GET /api/executions/?who=carol`", "/api/executions/?who=carol"),
        ("`GET /api/executions/?trigger=api`", "/api/executions/?trigger=api"),
        (
            "`GET /api/executions/` one day",
            f"/api/executions/?since={day}&until={day}",
        ),
    ]


def measure(samples: int) -> dict:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from executions.models import Execution

    client = Client()
    client.force_login(User.objects.get(username="bob"))
    out = {}
    for label, url in pages_to_time(client):
        for _ in range(2):
            assert client.get(url).status_code == 200, url
        times, cpu = [], []
        for _ in range(samples):
            t0, c0 = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        times.sort()
        out[label] = {
            "p50": statistics.median(times),
            "p95": times[max(0, round(0.95 * len(times)) - 1)],
            "queries": len(queries),
            # This process's CPU time: what the page costs without waiting for a core (on
            # SQLite it includes the database's work; PostgreSQL's runs in its own process).
            "cpu_p50": statistics.median(cpu),
        }
    return {"runs": Execution.objects.count(), "pages": out, "load": os.getloadavg()[0]}


def child(backend: str, runs: int, samples: int) -> None:
    setup_django(database_url(backend, runs))
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from executions.models import Execution

    seconds = None
    if not Execution.objects.exists():
        print(f"[{backend}] seeding {runs:,} runs", file=sys.stderr, flush=True)
        seconds = seed(runs)
    result = measure(samples)
    result["seed_seconds"] = seconds
    result["vendor"] = connection.vendor
    print(json.dumps(result))


# --- the parent: both sizes, both backends, one table ------------------------------------


def prepare(backend: str, runs: int, reseed: bool) -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        if reseed:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{RUN_DIR / f'dash-{runs}.sqlite3'}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    name = f"bench_dash_{runs}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        if reseed:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def run_child(backend: str, runs: int, samples: int) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            backend,
            "--runs",
            str(runs),
            "--samples",
            str(samples),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(backend: str, small: dict, large: dict) -> tuple[str, bool]:
    lines = [
        f"### {backend}: {small['runs']:,} vs {large['runs']:,} runs "
        f"(load average {small['load']:.1f} / {large['load']:.1f})",
        "",
        f"| page | p50 / p95 at {small['runs']:,} | p50 / p95 at {large['runs']:,} "
        f"| ratio p95 | CPU p50 at {large['runs']:,} | queries |",
        "|---|---|---|---|---|---|",
    ]
    ok = True
    for label, s in small["pages"].items():
        big = large["pages"][label]
        same = s["queries"] == big["queries"]
        ok &= same and big["p95"] < 150
        queries = str(s["queries"]) if same else f"{s['queries']} → {big['queries']} (grows)"
        lines.append(
            f"| {label} | {s['p50']:.1f} / {s['p95']:.1f} ms | {big['p50']:.1f} / "
            f"{big['p95']:.1f} ms | {big['p95'] / s['p95']:.2f}x | {big['cpu_p50']:.1f} ms "
            f"| {queries} |"
        )
    if large.get("seed_seconds"):
        lines.append(f"\nSeeding {large['runs']:,} runs took {large['seed_seconds']:.0f} s.")
    return "\n".join(lines), ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="the large history size")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs, args.samples)
        return 0
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    met = True
    for backend in backends:
        results = []
        for runs in (SMALL, args.runs):
            prepare(backend, runs, args.reseed)
            results.append(run_child(backend, runs, args.samples))
        text, ok = table(backend, *results)
        met &= ok
        print(text, flush=True)
        print()
    print(f"p95 < 150 ms and the same number of queries everywhere: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
