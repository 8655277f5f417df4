"""Deliveries through the ASGI application daphne serves (atmosly.asgi), not the test client's
WSGI handler: /hooks/ requests run in one long-lived thread on a kept database connection,
every other request in a thread of its own (atmosly.asgi.HTTPHandler)."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.core.signals import request_started

from atmosly.asgi import application
from executions.models import Execution
from tests.webhooks.helpers import Hook, encode, github_push, sha_of, signed_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def asgi_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> dict:
    """One request through the ASGI application, as daphne hands it over."""
    communicator = HttpCommunicator(
        application,
        method,
        path,
        body=body,
        headers=[(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    )
    communicator.scope["server"] = ("testserver", 80)
    return await communicator.get_response(timeout=10)


async def post_push(hook: Hook, n: int) -> dict:
    body = encode(github_push("main", after=sha_of(n)))
    headers = {**signed_headers("github", body, hook.secret), "Content-Type": "application/json"}
    response = await asgi_request("POST", f"/hooks/github/{hook.hook_id}/", body, headers)
    assert response["status"] == 202, response["body"][:300]
    return json.loads(response["body"])


@pytest.fixture
def record_threads():
    """The name of the thread each request's sync code started in (request_started)."""
    seen: list[str] = []

    def record(**kwargs):
        seen.append(threading.current_thread().name)

    request_started.connect(record, weak=False, dispatch_uid="test-asgi-threads")
    yield seen
    request_started.disconnect(dispatch_uid="test-asgi-threads")


async def test_deliveries_start_runs_in_one_kept_thread(github_hook: Hook, record_threads):
    answers = [await post_push(github_hook, n) for n in range(3)]

    assert [a["outcome"] for a in answers] == ["triggered"] * 3
    runs = await sync_to_async(
        lambda: Execution.objects.filter(workflow=github_hook.workflow).count()
    )()
    assert runs == 3
    assert len(record_threads) == 3 and len(set(record_threads)) == 1


async def test_other_requests_keep_a_thread_each(github_hook: Hook, record_threads):
    for _ in range(2):
        assert (await asgi_request("GET", "/accounts/login/"))["status"] == 200
    await post_push(github_hook, 1)

    assert len(record_threads) == 3 and len(set(record_threads)) == 3
