"""The execution websocket: permission check, replay from a sequence number, live streaming of
lines written by another thread (as the worker does), status changes, and the end of the run."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from atmosly.asgi import websocket_urlpatterns
from executions.logs import LogWriter
from executions.services import do_change_status, do_create_execution
from executions.status import ExecutionStatus as S

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def connect(execution_id: int, user, after: int | None = None) -> WebsocketCommunicator:
    path = f"/ws/executions/{execution_id}/" + (f"?after={after}" if after is not None else "")
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    return communicator


@sync_to_async
def make_run(workflow):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    do_change_status(execution, S.RUNNING)
    return execution


@sync_to_async
def write_lines(execution, lines: list[str], secrets=()) -> None:
    writer = LogWriter(execution, secrets=secrets)
    writer.set_stage(execution.stages.first())
    for line in lines:
        writer.line(line)
    writer.flush(final=True)


async def receive_until(communicator, predicate, timeout: float = 5.0) -> list[dict]:
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            message = await communicator.receive_json_from(timeout)
            seen.append(message)
            if predicate(message):
                return seen


async def test_replay_then_stream_then_end(workflow, users):
    execution = await make_run(workflow)
    await write_lines(execution, ["line 0", "line 1"])  # chunk seq 0
    await write_lines(execution, ["line 2"])  # chunk seq 1

    # A browser that already saw chunk 0 reconnects and gets only what it missed.
    communicator = connect(execution.pk, users["carol"], after=0)
    connected, _ = await communicator.connect()
    assert connected
    first = await receive_until(communicator, lambda m: m["type"] == "status")
    logs = [m for m in first if m["type"] == "log"]
    assert [(m["seq"], m["text"]) for m in logs] == [(1, "line 2\n")]
    assert first[-1]["status"] == "running"

    # The worker (another thread, its own DB connection) writes more and finishes.
    def worker():
        from django.db import connection

        from executions.models import Execution

        run = Execution.objects.get(pk=execution.pk)
        writer = LogWriter(run, secrets=["hunter2-password"])
        writer.set_stage(run.stages.first())
        writer.line("live line with hunter2-password inside")
        writer.flush()
        do_change_status(run, S.SUCCEEDED)
        connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    rest = await receive_until(communicator, lambda m: m["type"] == "end", timeout=10)
    thread.join()
    texts = [m["text"] for m in rest if m["type"] == "log"]
    assert texts == ["live line with *** inside\n"]
    statuses = [m["status"] for m in rest if m["type"] == "status"]
    assert statuses[-1] == "succeeded"
    assert rest[-1] == {"type": "end", "status": "succeeded", "seq": 2}
    await communicator.disconnect()


async def test_full_replay_from_the_start(workflow, users):
    execution = await make_run(workflow)
    await write_lines(execution, [f"line {i}" for i in range(5000)])
    communicator = connect(execution.pk, users["carol"])
    assert (await communicator.connect())[0]
    seen = await receive_until(communicator, lambda m: m["type"] == "status")
    text = "".join(m["text"] for m in seen if m["type"] == "log")
    assert text.splitlines() == [f"line {i}" for i in range(5000)]
    await communicator.disconnect()


async def test_refused_without_view_permission_or_membership(workflow, users):
    execution = await make_run(workflow)
    for name in ("frank", "erin"):  # frank: no role; erin: Admin, not a member
        communicator = connect(execution.pk, users[name])
        connected, code = await communicator.connect()
        assert not connected and code == 4403
    from django.contrib.auth.models import AnonymousUser

    communicator = connect(execution.pk, AnonymousUser())
    connected, code = await communicator.connect()
    assert not connected
