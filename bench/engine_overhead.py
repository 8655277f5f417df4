"""Engine overhead: the same clone → `podman build --no-cache` → push of a tiny app (FROM
localhost/busybox, three RUN steps), by a plain shell script (git + the podman CLI with --url to
the same engine socket) and by a Workflows execution triggered through the API (Django test
client) and run by a real `manage.py qcluster` worker, alternated, 10 times each after one
warm-up of each. Prints both medians, their ratio and difference (goal: <= 1.10x and <= 0.3 s;
Buildbot 4.3 measured 1.5x, +1.1 s on this machine kind).

Self-contained: starts scripts/services (engine, registries), a git smart-HTTP server with
basic auth, a fresh SQLite database and workspace root under .run/bench-engine/, the worker.
Loopback only.

    .venv/bin/python bench/engine_overhead.py [--runs 10]

The set-up helpers here are shared by bench/engine_trigger_latency.py and
bench/engine_log_throughput.py.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "bench-engine"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GIT_USER, GIT_PASSWORD = "bench", "bench-" + uuid.uuid4().hex[:12]
REGISTRY = "127.0.0.1:5000"


def three_step_app(marker: str = "") -> dict[str, str]:
    marker = marker or uuid.uuid4().hex[:8]
    return {
        "Dockerfile": (
            "FROM localhost/busybox:latest\n"
            f'RUN echo "step 1 {marker}"\n'
            f'RUN echo "step 2 {marker}" && mkdir -p /www\n'
            f'RUN echo "step 3 {marker}"\n'
            "COPY index.html /www/index.html\n"
        ),
        "index.html": f"<h1>bench {marker}</h1>\n",
    }


# ---------------------------------------------------------------------------------------------
# environment, services, git


def services_env() -> dict[str, str]:
    """Starts (or reuses) the engine and registries; returns DOCKER_HOST and friends."""
    script = str(ROOT / "scripts" / "services")
    subprocess.run([script, "start"], cwd=ROOT, check=True, capture_output=True, timeout=900)
    out = subprocess.run([script, "env"], cwd=ROOT, check=True, capture_output=True, text=True)
    values = {}
    for line in out.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export":
            key, _, value = words[1].partition("=")
            values[key] = value
    return values


def fresh_environment(name: str, **extra: str) -> dict[str, str]:
    """A new SQLite file and workspace root for this run, in os.environ before Django starts;
    returns the environment for the worker. Both are removed at exit."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    tag = f"{name}-{os.getpid()}"
    db = RUN_DIR / f"{tag}.sqlite3"
    workspaces = RUN_DIR / f"workspaces-{tag}"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    env = {
        **services_env(),
        "DATABASE_URL": f"sqlite:///{db}",
        "DJANGO_SETTINGS_MODULE": "atmosly.settings",
        "EXECUTIONS_RUN_INLINE": "0",
        "WORKSPACE_ROOT": str(workspaces),
        "Q_WORKERS": "1",
        "LOG_LEVEL": "WARNING",
        # Throwaway per-run keys: the worker refuses the development ones with DEBUG off.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        **extra,
    }
    os.environ.update(env)
    if "REDIS_URL" not in extra:
        os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))

    def remove() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(workspaces, ignore_errors=True)

    atexit.register(remove)
    return dict(os.environ)


def setup_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _git(*args: str, cwd: Path | None = None) -> str:
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.org"]
    return subprocess.run(
        ["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


class GitServer:
    """scripts/git_http_server.py with basic auth over a private root, stopped at exit."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="git-", dir=RUN_DIR))
        self.process = subprocess.Popen(
            [
                PYTHON,
                str(ROOT / "scripts" / "git_http_server.py"),
                *("--root", str(self.root), "--port", "0", "--quiet"),
                *("--user", GIT_USER),
            ],
            env={**os.environ, "GIT_HTTP_PASSWORD": GIT_PASSWORD},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        match = re.fullmatch(r"listening on (\d+)\s*", first)
        if not match:
            raise RuntimeError(f"git server did not start: {first!r}")
        self.port = int(match.group(1))
        atexit.register(self.stop)

    def url(self, name: str, with_credentials: bool = False) -> str:
        auth = f"{GIT_USER}:{GIT_PASSWORD}@" if with_credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}/{name}.git"

    def create_repo(self, name: str, files: dict[str, str | bytes]) -> str:
        bare = self.root / f"{name}.git"
        _git("init", "-q", "--bare", "-b", "main", str(bare))
        with tempfile.TemporaryDirectory() as work:
            _git("init", "-q", "-b", "main", work)
            for rel, content in files.items():
                path = Path(work) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                data = content if isinstance(content, bytes) else content.encode()
                path.write_bytes(data)
            _git("add", "-A", cwd=Path(work))
            _git("commit", "-q", "-m", "init", cwd=Path(work))
            _git("push", "-q", str(bare), "main", cwd=Path(work))
            return _git("rev-parse", "HEAD", cwd=Path(work)).strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# worker and redis


class Worker:
    """`manage.py qcluster` (one worker process) in its own process group."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.log_path = RUN_DIR / f"worker-{name}-{os.getpid()}.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [PYTHON, "manage.py", "qcluster"],
            cwd=ROOT,
            # INFO: django-q2 says "ready for work at <pid>" at that level.
            env={**env, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.findall(r"ready for work at (\d+)", self.log_path.read_text())
            if found:
                self.pid = int(found[-1])  # the process that runs the tasks
                atexit.register(self.stop)
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop(keep_log=True)
        raise RuntimeError(f"qcluster did not start; see {self.log_path}")

    def rss_kb(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        return 0

    def stop(self, keep_log: bool = False) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        if not keep_log:
            self.log_path.unlink(missing_ok=True)


def start_redis() -> str:
    """A redis-server of our own on a free loopback port, stopped at exit."""
    import redis

    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=RUN_DIR,
    )
    atexit.register(lambda: (process.terminate(), process.wait(10)))
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Workflows objects and runs


def make_workflow(git: GitServer, files: dict[str, str], **fields):
    """A user, a project with the open registry, a service on the git server and its CI
    workflow (Source → Build → Push, no cache, one tag); returns (workflow, API client)."""
    from django.contrib.auth.models import User
    from django.test import Client

    from workflows.models import PipelineType, Project, RegistryConnection, Service
    from workflows.services import do_create_service

    name = f"bench-{uuid.uuid4().hex[:8]}"
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.org", "bench-password"
    )
    project = Project.objects.get_or_create(name="bench")[0]
    project.members.add(user)
    registry = RegistryConnection.objects.get_or_create(
        project=project,
        name="local",
        defaults={"provider": "generic", "url": REGISTRY, "insecure": True},
    )[0]
    git.create_repo(name, files)
    service = do_create_service(
        Service(
            project=project,
            name=name,
            repo_url=git.url(name),
            git_username=GIT_USER,
            git_token=GIT_PASSWORD,
        )
    )
    workflow = service.workflows.get()
    workflow.pipeline_type = PipelineType.CI
    workflow.registry = registry
    workflow.repository = f"bench/{name}"
    workflow.tag_template = "{sha}"
    workflow.cache_enabled = False
    for field, value in fields.items():
        setattr(workflow, field, value)
    workflow.save()
    client = Client()
    client.force_login(user)
    return workflow, client


def trigger(client, workflow) -> tuple[int, float]:
    """POST /api/workflows/<id>/run/; returns the run's id and the wall time just before."""
    began = time.time()
    response = client.post(
        f"/api/workflows/{workflow.pk}/run/", {"ref": "main"}, content_type="application/json"
    )
    if response.status_code != 201:
        raise RuntimeError(f"run refused: {response.status_code} {response.content[:300]!r}")
    return response.json()["id"], began


def wait_finished(execution_id: int, timeout: float = 300):
    from executions.models import Execution
    from tests.base import wait_for

    def finished():
        execution = Execution.objects.get(pk=execution_id)
        return execution if execution.is_terminal else None

    return wait_for(finished, timeout, f"run {execution_id} to end", poll=0.01)


def wait_task_saved(execution_id: int, timeout: float = 60) -> None:
    """Waits for the worker to be done with the run's clean-up: since one worker process holds
    many runs, the django-q2 task returns at once, so the sign is the run's workspace, which
    its thread removes after the final status (then the run's local image tag)."""
    from tests.base import wait_for

    workspace = Path(os.environ["WORKSPACE_ROOT"]) / f"execution-{execution_id}"
    wait_for(lambda: not workspace.exists(), timeout, f"run {execution_id}'s clean-up", poll=0.01)
    time.sleep(0.05)  # the image tag goes right after


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# ---------------------------------------------------------------------------------------------
# the benchmark

# The same build as the Build stage asks for: its two labels as one LABEL line at the end of the
# Dockerfile (podman makes each `--label` a step of its own, about 0.15 s each here, so the stage
# appends one line instead), and RUN steps in a network namespace of their own, off the host's
# network (SANDBOX_NETWORK "bridge", the default; about 0.18 s per RUN step here, measured with
# and without `--network private`).
PLAIN_SCRIPT = """\
set -eu
git -c credential.helper= clone -q --depth 1 --single-branch --branch main "$REPO_URL" "$WORK/src"
sha=$(git -C "$WORK/src" rev-parse HEAD)
printf '\\nLABEL "org.opencontainers.image.revision"="%s" "org.opencontainers.image.source"="%s"\\n' \\
    "$sha" "$PUBLIC_URL" >> "$WORK/src/Dockerfile"
podman --remote --url "$DOCKER_HOST" build -q --no-cache --network private \\
    -t "$IMAGE:$sha" "$WORK/src" >/dev/null
podman --remote --url "$DOCKER_HOST" push -q --tls-verify=false "$IMAGE:$sha"
echo "$sha"
"""


def plain_run(env: dict[str, str], repo_url: str, public_url: str, image: str) -> float:
    """The shell script, timed from start to the end of the push; clean-up is not timed."""
    work = tempfile.mkdtemp(prefix="plain-", dir=RUN_DIR)
    began = time.monotonic()
    done = subprocess.run(
        ["sh", "-c", PLAIN_SCRIPT],
        env={**env, "REPO_URL": repo_url, "PUBLIC_URL": public_url, "WORK": work, "IMAGE": image},
        capture_output=True,
        text=True,
        timeout=300,
    )
    took = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"plain script failed:\n{done.stderr}")
    sha = done.stdout.strip().splitlines()[-1]
    subprocess.run(
        ["podman", "--remote", "--url", env["DOCKER_HOST"], "rmi", f"{image}:{sha}"],
        capture_output=True,
        timeout=60,
    )
    shutil.rmtree(work, ignore_errors=True)
    return took


def workflows_run(client, workflow) -> tuple[float, object]:
    """Trigger through the API to the run's Succeeded (its finished_at, written by the worker;
    the workspace and local tag are removed after that, as the script's clean-up is)."""
    execution_id, began = trigger(client, workflow)
    execution = wait_finished(execution_id)
    wait_task_saved(execution_id)  # the clean-up after Succeeded is not timed, as for the script
    if execution.status != "succeeded":
        raise RuntimeError(
            f"run #{execution.number} ended {execution.status}: {execution.status_reason}"
        )
    return execution.finished_at.timestamp() - began, execution


def stage_seconds(execution) -> dict[str, float]:
    return {
        s.name: (s.finished_at - s.started_at).total_seconds()
        for s in execution.stages.order_by("position")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    args.runs = min(max(args.runs, 1), 50)

    env = fresh_environment("overhead")
    setup_django()
    git = GitServer()
    worker = Worker(env, "overhead")
    files = three_step_app()
    workflow, client = make_workflow(git, files)
    plain_repo = f"plain-{uuid.uuid4().hex[:8]}"
    git.create_repo(plain_repo, files)
    plain_url = git.url(plain_repo, with_credentials=True)
    plain_image = f"{REGISTRY}/bench/{plain_repo}"
    print(
        f"engine {env['DOCKER_HOST']}, registry {REGISTRY}, git 127.0.0.1:{git.port}, "
        f"worker pid {worker.pid}, {env['DATABASE_URL']}"
    )

    plain = [plain_url, git.url(plain_repo), plain_image]
    plain_run(env, *plain)  # warm-ups, not counted
    workflows_run(client, workflow)
    plain_times: list[float] = []
    ours: list[float] = []
    stages: list[dict[str, float]] = []
    for i in range(args.runs):
        # ABBA order, so neither side always runs right after the other.
        order = ("plain", "workflows") if i % 2 == 0 else ("workflows", "plain")
        for side in order:
            if side == "plain":
                plain_times.append(plain_run(env, *plain))
            else:
                took, execution = workflows_run(client, workflow)
                ours.append(took)
                stages.append(stage_seconds(execution))
        print(f"  run {i + 1:>2}: plain {plain_times[-1]:.2f} s, workflows {ours[-1]:.2f} s")

    plain_median, ours_median = statistics.median(plain_times), statistics.median(ours)
    ratio, diff = ours_median / plain_median, ours_median - plain_median
    low, high = min(plain_times), max(plain_times)
    print(f"plain script   median {plain_median:.2f} s  (min {low:.2f}, max {high:.2f})")
    print(f"workflows run  median {ours_median:.2f} s  (min {min(ours):.2f}, max {max(ours):.2f})")
    names = list(stages[0])
    print(
        "workflows stage medians: "
        + ", ".join(f"{n} {statistics.median(s[n] for s in stages):.2f} s" for n in names)
    )
    print(f"ratio of medians {ratio:.2f}x, difference {diff:+.2f} s")
    met = ratio <= 1.10 and diff <= 0.3
    print(f"goal <= 1.10x and <= 0.3 s: {'met' if met else 'NOT met'} (Buildbot 4.3: 1.5x, +1.1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
