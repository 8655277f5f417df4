"""Webhook burst: 200 services pushed at once, then the same 200 deliveries again.

Self-contained like bench/webhooks_latency.py (fresh SQLite database under .run/bench-webhooks/,
daphne on a free loopback port). Three rounds, each sent by 50 concurrent clients:

1. one push to each of 200 services (GitHub, GitLab and Bitbucket in turn): exactly 200 runs,
   0 lost, 0 duplicated, all sent and answered within 10 s;
2. the same 200 deliveries resent (same delivery ids): still 200 runs;
3. the same 200 commits with new delivery ids (a second hook; GitHub Enterprise's second push):
   still 200 runs.

    .venv/bin/python bench/webhooks_burst.py [--services 200] [--clients 50]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# bench/ is not a package: import the shared set-up from the script beside this one.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhooks_latency import (
    fresh_environment,
    make_targets,
    percentile,
    send_push,
    server,
    setup_django,
)

WINDOW_SECONDS = 10.0


def burst(port: int, jobs: list, clients: int) -> tuple[float, list[tuple[int, dict]], list]:
    """Sends every (target, sha, delivery id) at once; returns the elapsed seconds, the answers
    and the latencies in ms."""
    latencies: list[float] = []

    def one(job):
        began = time.monotonic()
        answer = send_push(port, *job)
        latencies.append((time.monotonic() - began) * 1000)
        return answer

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        answers = list(pool.map(one, jobs, timeout=120))
    return time.monotonic() - started, answers, latencies


def count_runs(workflow_ids: list[int]) -> tuple[int, int, int]:
    """Runs in total, workflows without a run (lost) and extra runs (duplicated)."""
    from executions.models import Execution

    per_workflow = Counter(Execution.objects.values_list("workflow_id", flat=True))
    lost = sum(1 for w in workflow_ids if per_workflow[w] == 0)
    duplicated = sum(max(0, per_workflow[w] - 1) for w in workflow_ids)
    return sum(per_workflow.values()), lost, duplicated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--conn-max-age", type=int, default=0)
    args = parser.parse_args()
    args.services = min(max(args.services, 1), 2000)
    args.clients = min(max(args.clients, 1), 200)

    env = fresh_environment("burst", args.conn_max_age)
    setup_django()
    targets = make_targets(args.services)
    from integrations.models import WebhookEndpoint

    hook_ids = [t.hook_id for t in targets]
    workflow_of = dict(
        WebhookEndpoint.objects.filter(hook_id__in=hook_ids).values_list("hook_id", "workflow_id")
    )
    workflow_ids = [workflow_of[h] for h in hook_ids]
    run = uuid.uuid4().hex[:8]
    shas = [hashlib.sha1(f"{run}-{i}".encode()).hexdigest() for i in range(len(targets))]
    first = [(t, sha, f"{run}-{i}") for i, (t, sha) in enumerate(zip(targets, shas, strict=True))]
    again = list(first)
    second_hook = [
        (t, sha, f"{run}-{i}-b") for i, (t, sha) in enumerate(zip(targets, shas, strict=True))
    ]

    ok = True
    print(
        f"{args.services} services, {args.clients} concurrent clients, SQLite {env['DATABASE_URL']}"
    )
    print(
        f"{'round':<34} {'sent':>5} {'2xx':>5} {'secs':>6} {'p95 ms':>7} {'runs':>5} {'lost':>5} {'dup':>4}  outcomes"
    )
    with server(env) as srv:
        for name, jobs in (
            ("1. one push per service", first),
            ("2. same deliveries again", again),
            ("3. same commits, new delivery ids", second_hook),
        ):
            elapsed, answers, latencies = burst(srv.port, jobs, args.clients)
            runs, lost, duplicated = count_runs(workflow_ids)
            acknowledged = sum(1 for status, _ in answers if 200 <= status < 300)
            outcomes = Counter(body.get("outcome", "?") for _, body in answers)
            print(
                f"{name:<34} {len(jobs):>5} {acknowledged:>5} {elapsed:>6.2f} "
                f"{percentile(latencies, 95):>7.1f} {runs:>5} {lost:>5} {duplicated:>4}  "
                + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            )
            ok &= acknowledged == len(jobs) and runs == len(targets) and not lost and not duplicated
            ok &= elapsed <= WINDOW_SECONDS
    print("exactly one run per service, all within 10 s:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
