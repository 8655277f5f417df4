"""The dashboard and the runs list at 1,000 and at 1,000,000 runs: time per page (p50, p95)
and the number of queries, which must be the same at both sizes.

A fresh SQLite database (like the other benchmarks), 20 workflows in one project; runs are
inserted with bulk_create. Pages are fetched in-process through Django's test client (no
server, so the figures are the view's and the database's time): the dashboard (`/`), the
runs list filtered by status, and the fifth page of the list through its cursor.

    .venv/bin/python bench/dashboard.py [--runs 1000000] [--samples 30] [--index]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhooks_latency import fresh_environment, percentile, setup_django

WORKFLOWS = 20
STATUSES = ["succeeded"] * 7 + ["failed", "error", "terminated"]


def seed(total: int, workflows, user, already: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from executions.models import Execution

    start = timezone.now() - timedelta(days=365)
    batch = []
    with transaction.atomic():
        for n in range(already, total):
            workflow = workflows[n % len(workflows)]
            at = start + timedelta(seconds=n * 30)
            batch.append(
                Execution(
                    workflow=workflow,
                    number=n // len(workflows) + 1,
                    trigger="manual",
                    triggered_by=user,
                    ref="main",
                    ref_kind="branch",
                    branch="main",
                    commit_sha=f"{n:040x}",
                    status=STATUSES[n % len(STATUSES)],
                    created_at=at,
                    started_at=at,
                    finished_at=at + timedelta(seconds=40),
                )
            )
            if len(batch) == 10_000:
                Execution.objects.bulk_create(batch)
                batch = []
        Execution.objects.bulk_create(batch)


def measure(client, url: str, samples: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    queries = 0
    for _ in range(samples):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(captured)
    return statistics.median(times), percentile(times, 95), queries


def next_page(client, url: str, pages: int) -> str:
    for _ in range(pages):
        html = client.get(url).content.decode()
        found = re.search(r'href="([^"]*)" data-testid="runs-next"', html)
        url = "/" + found.group(1).replace("&amp;", "&")
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument(
        "--index",
        action="store_true",
        help="add an index on (created_at, id) first (the runs list's keyset order)",
    )
    args = parser.parse_args()
    fresh_environment("dashboard")
    setup_django()
    from django.contrib.auth.models import User
    from django.test import Client

    from workflows.models import Project, Service
    from workflows.services import do_create_service

    user = User.objects.create_superuser("bench", "bench@example.org", "x")
    project = Project.objects.create(name="benchproj")
    project.members.add(user)
    workflows = [
        do_create_service(
            Service(project=project, name=f"svc-{i}", repo_url=f"https://git.example.org/{i}.git")
        ).workflows.get()
        for i in range(WORKFLOWS)
    ]
    if args.index:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE INDEX bench_execution_created ON executions_execution (created_at, id)"
            )
    client = Client()
    client.force_login(user)
    urls = {"dashboard": "/", "runs, status=failed": "/?status=failed"}
    ok, counts, seeded = True, {}, 0
    for size in (1000, args.runs):
        started = time.monotonic()
        seed(size, workflows, user, seeded)
        seeded = size
        print(f"{size:>9} runs (seeded in {time.monotonic() - started:.0f} s)")
        pages = {**urls, "runs, 5th page by cursor": next_page(client, "/", 4)}
        for name, url in pages.items():
            p50, p95, queries = measure(client, url, args.samples)
            counts.setdefault(name, []).append(queries)
            ok &= p95 < 150
            print(f"  {name:<26} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  {queries} queries")
    same = all(len(set(c)) == 1 for c in counts.values())
    print(
        f"same number of queries at both sizes: {'yes' if same else 'NO'}; p95 < 150 ms: "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0 if ok and same else 1


if __name__ == "__main__":
    sys.exit(main())
