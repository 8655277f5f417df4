"""Requests through the ASGI application daphne serves (atmosly.asgi), not the test client's
WSGI handler: /hooks/ requests run in one long-lived thread on a kept database connection,
every other request in a thread of its own, and every request through the whole middleware
chain in sync mode (atmosly.asgi.HTTPHandler)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.core.signals import request_started

from atmosly.asgi import application
from executions.models import Execution
from tests.webhooks.helpers import Hook, encode, github_push, sha_of, signed_headers

pytestmark = pytest.mark.django_db(transaction=True)


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


def cookies(response: dict) -> dict[str, str]:
    jar = {}
    for name, value in response["headers"]:
        if name.lower() == b"set-cookie":
            key, _, rest = value.decode().partition("=")
            jar[key] = rest.split(";", 1)[0]
    return jar


def header(response: dict, name: bytes) -> str:
    return next((v.decode() for k, v in response["headers"] if k.lower() == name), "")


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


@pytest.mark.asyncio
async def test_deliveries_start_runs_in_one_kept_thread(github_hook: Hook, record_threads):
    answers = [await post_push(github_hook, n) for n in range(3)]

    assert [a["outcome"] for a in answers] == ["triggered"] * 3
    runs = await sync_to_async(
        lambda: Execution.objects.filter(workflow=github_hook.workflow).count()
    )()
    assert runs == 3
    assert len(record_threads) == 3 and len(set(record_threads)) == 1


@pytest.mark.asyncio
async def test_other_requests_keep_a_thread_each(github_hook: Hook, record_threads):
    for _ in range(2):
        assert (await asgi_request("GET", "/accounts/login/"))["status"] == 200
    await post_push(github_hook, 1)

    assert len(record_threads) == 3 and len(set(record_threads)) == 3


@pytest.mark.asyncio
async def test_pages_pass_every_middleware_in_order(django_user_model):
    """Security and clickjacking headers, CSRF, session, authentication and the API body limit
    (a `process_view`): each middleware still acts with the chain run behind one sync hop."""
    await sync_to_async(django_user_model.objects.create_user)("ada", password="pw-for-ada-1")

    page = await asgi_request("GET", "/accounts/login/")
    assert page["status"] == 200
    assert header(page, b"x-frame-options") == "DENY"
    assert header(page, b"x-content-type-options") == "nosniff"
    token = cookies(page)["csrftoken"]

    refused = await asgi_request(
        "POST",
        "/accounts/login/",
        b"username=ada&password=pw-for-ada-1",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused["status"] == 403  # no CSRF cookie or token

    login = await asgi_request(
        "POST",
        "/accounts/login/",
        f"username=ada&password=pw-for-ada-1&csrfmiddlewaretoken={token}".encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={token}"},
    )
    assert login["status"] == 302, login["body"][:300]
    session = cookies(login)["sessionid"]
    assert (await asgi_request("GET", "/accounts/tokens/"))["status"] == 302  # to log in
    signed_in = await asgi_request(
        "GET", "/accounts/tokens/", b"", {"Cookie": f"sessionid={session}"}
    )
    assert signed_in["status"] == 200

    too_big = await asgi_request(
        "POST",
        "/api/projects/",
        b"{}",
        {"Content-Type": "application/json", "Content-Length": str(6 * 1024 * 1024)},
    )
    assert too_big["status"] == 413
    assert "takes at most" in json.loads(too_big["body"])["detail"]


PROBE = """
import gc, sys
sys.argv[0] = {program!r}
import atmosly.asgi
print(sys.getswitchinterval(), gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize(
    ("program", "tuned"),
    [
        ("/srv/app/.venv/bin/daphne", True),
        ("/usr/lib/python3/dist-packages/daphne/__main__.py", True),  # python -m daphne
        ("/home/daphne/app/manage.py", False),
    ],
)
def test_only_the_daphne_process_is_tuned(program, tuned):
    """The GIL switch interval and the frozen start-up objects are for the server
    (atmosly.asgi.tune_server_interpreter); this test process imported `application` too."""
    assert sys.getswitchinterval() == 0.005
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(program=program)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == (["0.001", "True"] if tuned else ["0.005", "False"])
