"""Live updates when the web side and the worker are separate processes, as in production.

A real `manage.py qcluster` subprocess (one worker) runs a real pipeline (clone over HTTP, build
on podman, push to the registry) started through the HTTP API in this process, while a websocket
in this process receives the RUN output live and the final status. Once on the embedded defaults
(ORM broker; the consumer notices the worker's writes by polling the database) and once with
Redis (the Redis broker; channels-redis wakes the consumer up, so polling is switched off to
prove it).

The worker and Redis fixtures here are also used by test_crash_recovery.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings

from tests import base
from tests.executions import make_git_workflow
from tests.realparts import sample_app_files, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
READY_RE = re.compile(r"ready for work at (\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """One `manage.py qcluster` subprocess in its own process group, logging to a file."""

    def __init__(self, log_path: Path, extra_env: dict[str, str] | None = None):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": base.database_url(),
            "Q_WORKERS": "1",
            "PYTHONUNBUFFERED": "1",
            # The broker this process enqueues on (the embedded ORM broker unless the session
            # runs the scale mode), unless the test asks for another.
            "REDIS_URL": settings.REDIS_URL,
        }
        env.update(extra_env or {})
        self.log_path = log_path
        self.started = time.monotonic()
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopped (or killed) as one
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> int:
        """Waits for the worker process to say it is ready; returns its pid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := READY_RE.findall(self.log()):
                return int(found[-1])
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"qcluster did not get ready:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL to the whole cluster (sentinel, pusher, monitor, worker), as a crash does."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            # django-q2 stops its cluster on SIGTERM; it has been seen to hang now and then
            # while stopping, so the group is killed after a short wait.
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # whatever of the group is left
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def worker_starter(tmp_path: Path) -> Iterator:
    """Yields a function that starts qcluster subprocesses on the test database; stops them
    all when resumed."""
    workers: list[Worker] = []

    def start(**extra_env: str) -> Worker:
        worker = Worker(tmp_path / f"qcluster-{len(workers)}.log", extra_env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_worker(transactional_db, real_services, tmp_path) -> Iterator:
    """Workers on the test database, stopped before the database is emptied."""
    yield from worker_starter(tmp_path)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A redis-server of our own on a free loopback port, without persistence."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def use_redis(redis_url, settings, monkeypatch) -> str:
    """This process as a web server configured with REDIS_URL: channels-redis for the channel
    layer and django-q2's Redis broker for enqueueing. django-q2 reads Q_CLUSTER once, into
    `Conf`, when imported; `get_broker()` picks the Redis broker when `Conf.ORM` is unset."""
    from django_q.brokers import get_broker
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # The worker, given REDIS_URL, reads tests.settings' prefix: the same keys.
            "CONFIG": {"hosts": [redis_url], "prefix": settings.CHANNEL_PREFIX},
        }
    }
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", redis_url)
    broker = get_broker()
    assert isinstance(broker, Redis)
    broker.purge_queue()  # nothing left over from an earlier test
    return redis_url


def connect(execution_id: int, user) -> WebsocketCommunicator:
    from atmosly.asgi import websocket_urlpatterns

    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/executions/{execution_id}/"
    )
    communicator.scope["user"] = user
    return communicator


async def receive_all(communicator, timeout: float) -> list[tuple[float, dict]]:
    """Every message until the run's end, each with the (monotonic) time it arrived."""
    seen: list[tuple[float, dict]] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await communicator.receive_json_from(timeout)
            seen.append((time.monotonic(), message))
            if message["type"] == "end":
                return seen


def live_pipeline(project, registry, git_server) -> tuple:
    """A workflow whose one RUN step prints a line, waits 3 s, prints another."""
    marker = unique_name("live")
    dockerfile = (
        "FROM localhost/busybox:latest\n"
        f'RUN echo "first {marker}" && sleep 3 && echo "second {marker}"\n'
        "COPY index.html /www/index.html\n"
    )
    files = sample_app_files(extra={"Dockerfile": dockerfile})
    workflow, sha = make_git_workflow(project, git_server, files, registry=registry)
    return workflow, sha, marker


async def run_and_watch(workflow, users) -> tuple[dict, list[tuple[float, dict]]]:
    """Starts the run through the API (as bob) and watches it over the websocket (as carol)."""
    client = base.client_for(users["bob"])
    response = await sync_to_async(client.post)(
        f"/api/workflows/{workflow.pk}/run/", {"ref": "main"}, format="json"
    )
    assert response.status_code == 201, response.content
    run = response.json()
    communicator = connect(run["id"], users["carol"])
    connected, _ = await communicator.connect()
    assert connected
    try:
        messages = await receive_all(communicator, timeout=60)
    finally:
        await communicator.disconnect()
    return run, messages


def check_live(messages: list[tuple[float, dict]], marker: str, sha: str) -> None:
    """The RUN output came while the run was going on, the last status is Succeeded."""
    end_at, end = messages[-1]
    assert end["type"] == "end" and end["status"] == "succeeded", end
    logs = [(at, m) for at, m in messages if m["type"] == "log"]
    text = "".join(m["text"] for _, m in logs)
    assert "$ git clone" in text
    assert f"Checked out {sha[:12]}" in text
    # The step's output lines (its "STEP 2/3: RUN echo ..." header holds both texts too).
    first_at = next(at for at, m in logs if f"first {marker}" in m["text"].splitlines())
    second_at = next(at for at, m in logs if f"second {marker}" in m["text"].splitlines())
    lines = text.splitlines()
    assert lines.index(f"first {marker}") < lines.index(f"second {marker}")
    assert lines.index(f"second {marker}") < next(
        i for i, line in enumerate(lines) if line.startswith("Pushing")
    )
    # The step sleeps 3 s between its two lines: the first reached the browser well before the
    # second, so it was streamed while the build ran, not replayed at the end.
    assert second_at - first_at > 2.0, second_at - first_at
    assert end_at - first_at > 2.0
    # Status messages followed the stages: Build was seen running, then everything succeeded.
    statuses = [m for _, m in messages if m["type"] == "status"]
    assert any(
        s["status"] == "running"
        and any(st["kind"] == "build" and st["status"] == "running" for st in s["stages"])
        for s in statuses
    )
    assert statuses[-1]["status"] == "succeeded"
    assert {st["status"] for st in statuses[-1]["stages"]} == {"succeeded"}


@pytest.mark.asyncio
async def test_live_logs_from_a_worker_process_embedded(
    start_worker, users, project, registry, git_server
):
    worker = start_worker()
    await sync_to_async(worker.wait_ready)()
    workflow, sha, marker = await sync_to_async(live_pipeline)(project, registry, git_server)

    run, messages = await run_and_watch(workflow, users)

    assert run["status"] == "pending"
    check_live(messages, marker, sha)
    log = worker.log()
    assert f"execution-{run['id']}" in log, log[-2000:]


@pytest.mark.asyncio
async def test_live_logs_from_a_worker_process_with_redis(
    use_redis, start_worker, users, project, registry, git_server, monkeypatch
):
    from django_q.models import OrmQ

    from executions import consumers

    # No polling: whatever reaches the browser before the end was a Redis wake-up sent by the
    # worker process.
    monkeypatch.setattr(consumers, "POLL_SECONDS", 120.0)
    worker = start_worker(REDIS_URL=use_redis)
    await sync_to_async(worker.wait_ready)()
    workflow, sha, marker = await sync_to_async(live_pipeline)(project, registry, git_server)

    started = time.monotonic()
    run, messages = await run_and_watch(workflow, users)

    check_live(messages, marker, sha)
    assert messages[-1][0] - started < 60
    # The task went through Redis, not the database queue.
    assert not await sync_to_async(OrmQ.objects.exists)()
    assert f"execution-{run['id']}" in worker.log()
