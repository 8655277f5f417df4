"""Webhook acknowledgement latency at a steady rate (default 50 requests/s for 30 s).

Self-contained: makes a fresh SQLite database under .run/bench-webhooks/, sets up a project with
services and hooks, starts the same server `./scripts/run` starts (daphne, atmosly.asgi, the
embedded defaults) on a free loopback port, then sends signed GitHub, GitLab and Bitbucket pushes,
each a new commit that starts a run. It prints p50/p95/p99 and the ratio to a trivial 200 (a
static file from the same server) measured at the same rate in the same run.

    .venv/bin/python bench/webhooks_latency.py [--rate 50] [--seconds 30]

bench/webhooks_burst.py imports the set-up helpers from here.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "webhooks" / "fixtures"
PROVIDERS = ("github", "gitlab", "bitbucket")
HOSTS = {"github": "github.com", "gitlab": "gitlab.com", "bitbucket": "bitbucket.org"}
BASELINE_PATH = "/static/css/app.css"


@dataclass
class Target:
    provider: str
    repo_path: str  # e.g. bench/svc-7
    hook_id: str
    secret: str


def fresh_environment(name: str, conn_max_age: int = 0) -> dict[str, str]:
    """Points Django at a new SQLite file for this run and returns the environment for daphne.
    `conn_max_age` > 0 keeps database connections between requests (not the default)."""
    run_dir = ROOT / ".run" / "bench-webhooks"
    run_dir.mkdir(parents=True, exist_ok=True)
    db = run_dir / f"{name}-{os.getpid()}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    options = f"?conn_max_age={conn_max_age}" if conn_max_age > 0 else ""
    env = {
        "DATABASE_URL": f"sqlite:///{db}{options}",
        "DJANGO_SETTINGS_MODULE": "atmosly.settings",
        "EXECUTIONS_RUN_INLINE": "0",
        "LOG_LEVEL": "ERROR",
        # Throwaway per-run keys: the server refuses the development ones with DEBUG off.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    atexit.register(
        lambda: [Path(f"{db}{s}").unlink(missing_ok=True) for s in ("", "-wal", "-shm")]
    )
    return {**os.environ, **env}


def setup_django() -> None:
    """Migrates the fresh database and keeps this process's connection to it open.

    `./scripts/run` runs the django-q2 worker beside the web server, and the worker holds the
    database open. Without any other connection, SQLite checkpoints and removes the WAL each
    time the web server closes its connection (after every request), which is not how the
    product runs; this open connection stands in for the worker's."""
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0)
    connection.ensure_connection()


def make_targets(count: int) -> list[Target]:
    """`count` services in one project, each with an automatic workflow on main and a hook;
    providers take turns."""
    from triggers.webhooks import do_rotate_secret, get_endpoint
    from workflows.models import Project, RegistryConnection, Service, Workflow
    from workflows.services import do_create_service

    project = Project.objects.create(name=f"bench-{uuid.uuid4().hex[:8]}")
    RegistryConnection.objects.create(
        project=project, name="local", provider="generic", url="127.0.0.1:5000", insecure=True
    )
    targets = []
    for i in range(count):
        provider = PROVIDERS[i % len(PROVIDERS)]
        path = f"bench/svc-{i}"
        service = do_create_service(
            Service(
                project=project, name=f"svc-{i}", repo_url=f"https://{HOSTS[provider]}/{path}.git"
            )
        )
        workflow = Workflow.objects.get(service=service)
        workflow.trigger_mode = "automatic"
        workflow.save(update_fields=["trigger_mode"])
        secret = do_rotate_secret(workflow)
        targets.append(Target(provider, path, get_endpoint(workflow).hook_id, secret))
    return targets


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    port: int
    pid: int

    def cpu_ms(self) -> float:
        """CPU time the server process has used so far (user + system), in ms: unlike
        latency, this does not change when other processes load the machine."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(env: dict[str, str]):
    """daphne on a free loopback port, stopped (by its pid) on exit."""
    port = free_port()
    daphne = str(ROOT / ".venv" / "bin" / "daphne")
    log = open(ROOT / ".run" / "bench-webhooks" / f"daphne-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "atmosly.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if request(port, "GET", BASELINE_PATH)[0] == 200:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("daphne did not start; see .run/bench-webhooks/daphne-*.log")
        yield Server(port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> tuple[int, bytes]:
    """One request on a new connection, as providers send them; status 0 when it failed or
    took over 10 s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


FIXTURE_OF = {"github": "github_push", "gitlab": "gitlab_push", "bitbucket": "bitbucket_push"}
PAYLOADS = {provider: fixture(name) for provider, name in FIXTURE_OF.items()}


def push_payload(target: Target, sha: str, branch: str = "main") -> bytes:
    """The provider's documented push payload, for this repository, branch and commit."""
    payload = json.loads(json.dumps(PAYLOADS[target.provider]))
    host, path = HOSTS[target.provider], target.repo_path
    if target.provider == "github":
        payload.update(ref=f"refs/heads/{branch}", after=sha)
        payload["repository"].update(
            full_name=path,
            clone_url=f"https://{host}/{path}.git",
            html_url=f"https://{host}/{path}",
            ssh_url=f"git@{host}:{path}.git",
            git_url=f"git://{host}/{path}.git",
        )
    elif target.provider == "gitlab":
        payload.update(ref=f"refs/heads/{branch}", after=sha, checkout_sha=sha)
        for part in (payload["project"], payload["repository"]):
            part.update(
                git_http_url=f"https://{host}/{path}.git",
                git_ssh_url=f"git@{host}:{path}.git",
                homepage=f"https://{host}/{path}",
            )
        payload["project"].update(path_with_namespace=path, web_url=f"https://{host}/{path}")
    else:
        payload["repository"].update(full_name=path)
        payload["repository"]["links"]["html"]["href"] = f"https://{host}/{path}"
        new = payload["push"]["changes"][0]["new"]
        new["name"], new["target"]["hash"] = branch, sha
    return json.dumps(payload).encode()


def push_headers(target: Target, body: bytes, delivery: str) -> dict[str, str]:
    signature = "sha256=" + hmac.new(target.secret.encode(), body, hashlib.sha256).hexdigest()
    common = {"Content-Type": "application/json"}
    if target.provider == "github":
        return {
            **common,
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature,
        }
    if target.provider == "gitlab":
        return {
            **common,
            "X-Gitlab-Event": "Push Hook",
            "X-Gitlab-Event-UUID": delivery,
            "X-Gitlab-Token": target.secret,
        }
    return {
        **common,
        "X-Event-Key": "repo:push",
        "X-Request-UUID": delivery,
        "X-Hub-Signature": signature,
    }


def send_push(port: int, target: Target, sha: str, delivery: str) -> tuple[int, dict]:
    body = push_payload(target, sha)
    status, answer = request(
        port,
        "POST",
        f"/hooks/{target.provider}/{target.hook_id}/",
        body,
        push_headers(target, body, delivery),
    )
    try:
        return status, json.loads(answer)
    except ValueError:
        return status, {}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def steady_load(rate: float, seconds: float, call) -> tuple[list[float], list, float]:
    """Calls `call(i)` at `rate` per second for `seconds` (open loop: a slow answer does not
    delay the next request); returns latencies in ms, results and the worst start lag in ms."""
    count = int(rate * seconds)
    latencies: list[float] = [0.0] * count
    results: list = [None] * count
    lag = [0.0]
    start = time.monotonic() + 0.2

    def one(i: int) -> None:
        due = start + i / rate
        time.sleep(max(0.0, due - time.monotonic()))
        began = time.monotonic()
        lag[0] = max(lag[0], (began - due) * 1000)
        results[i] = call(i)
        latencies[i] = (time.monotonic() - began) * 1000

    with ThreadPoolExecutor(max_workers=64) as pool:
        list(pool.map(one, range(count), timeout=seconds + 120))
    return latencies, results, lag[0]


def describe(name: str, latencies: list[float]) -> str:
    return (
        f"{name:<28} n={len(latencies):<5} p50={percentile(latencies, 50):7.1f} ms  "
        f"p95={percentile(latencies, 95):7.1f} ms  p99={percentile(latencies, 99):7.1f} ms  "
        f"max={max(latencies):7.1f} ms  mean={statistics.fmean(latencies):6.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=0,
        help="keep database connections this many seconds (default 0, as the product ships)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="pushes per service before the measured ones, not counted (default 1)",
    )
    args = parser.parse_args()
    args.rate = min(max(args.rate, 1.0), 500.0)
    args.seconds = min(max(args.seconds, 1.0), 600.0)

    env = fresh_environment("latency", args.conn_max_age)
    setup_django()
    targets = make_targets(args.services)
    from executions.models import Execution

    load_before = os.getloadavg()[0]
    with server(env) as srv:
        port = srv.port
        print(f"daphne on 127.0.0.1:{port}, {args.services} services, {env['DATABASE_URL']}")
        cpu = srv.cpu_ms()
        base, base_results, base_lag = steady_load(
            args.rate, args.baseline_seconds, lambda i: request(port, "GET", BASELINE_PATH)[0]
        )
        base_cpu, cpu = (srv.cpu_ms() - cpu) / len(base), srv.cpu_ms()
        run = uuid.uuid4().hex[:8]
        # One push per service first, not counted: each workflow's first delivery in a
        # server process runs the full run check (later ones check only that its rows are
        # unchanged, workflows.services.validate_for_run); --warmup 0 measures those too.
        for i in range(args.warmup * len(targets)):
            send_push(port, targets[i % len(targets)], uuid.uuid4().hex + "0" * 8, f"w{run}-{i}")
        cpu = srv.cpu_ms()

        def push(i: int) -> tuple[int, dict]:
            sha = hashlib.sha1(f"{run}-{i}".encode()).hexdigest()
            return send_push(port, targets[i % len(targets)], sha, f"{run}-{i}")

        hooks, hook_results, hook_lag = steady_load(args.rate, args.seconds, push)
        hook_cpu = (srv.cpu_ms() - cpu) / len(hooks)
    load_after = os.getloadavg()[0]

    bad_base = sum(1 for s in base_results if s != 200)
    triggered = sum(
        1 for s, body in hook_results if s == 202 and body.get("outcome") == "triggered"
    )
    runs = Execution.objects.count()
    print(
        f"rate {args.rate:g} req/s; baseline {args.baseline_seconds:g} s, webhooks {args.seconds:g} s"
    )
    print(describe(f"baseline GET {BASELINE_PATH}", base))
    print(describe("webhook push → 202 + run", hooks))
    print(
        f"ratio webhook/baseline: p50 {percentile(hooks, 50) / percentile(base, 50):.1f}x  "
        f"p95 {percentile(hooks, 95) / percentile(base, 95):.1f}x"
    )
    print(
        f"server CPU per request: baseline {base_cpu:.1f} ms, webhook {hook_cpu:.1f} ms "
        f"(at {args.rate:g} req/s the webhook path keeps {hook_cpu * args.rate / 10:.0f}% of a core "
        f"busy); machine load average {load_before:.1f} before, {load_after:.1f} after"
    )
    no_answer = sum(1 for s, _ in hook_results if s == 0)
    print(
        f"webhooks answered 202 triggered: {triggered}/{len(hook_results)} "
        f"(no answer within 10 s: {no_answer}); runs created: {runs} "
        f"({args.warmup * len(targets)} by the warm-up); "
        f"baseline errors: {bad_base}; worst start lag: {max(base_lag, hook_lag):.1f} ms"
    )
    p95_ok = percentile(hooks, 95) <= 50
    print(f"goal p95 <= 50 ms: {'met' if p95_ok else 'NOT met'}")
    return 0 if triggered == len(hook_results) == runs - args.warmup * len(targets) else 1


if __name__ == "__main__":
    sys.exit(main())
