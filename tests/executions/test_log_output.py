"""Logs keep what programs print (issue 12 part 1, issue 10 part 3): real Script and Build
stages on the engine, the log read back through the logs API (`?as=text` and JSON) and the
websocket. Progress bars redrawn with `\\r` keep their last state; characters split across two
writes come out whole, per stream; colours arrive as printed; long lines are split with a
marker, never cut, and masked before the split; secrets are masked in their common encodings,
also when written in two pieces."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from atmosly.asgi import websocket_urlpatterns
from executions.logs import CONTINUED, MAX_LINE_LENGTH
from executions.status import ExecutionStatus as S
from tests.base import client_for
from tests.executions import make_git_workflow, run_now
from tests.realparts import sample_app_files, unique_name
from workflows.models import CIVariable

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

SECRET = "p@ss/w0rd+&=?x"


def api_text(execution, user) -> str:
    response = client_for(user).get(f"/api/executions/{execution.pk}/logs/?as=text")
    assert response.status_code == 200
    return response.content.decode()


def api_chunks_text(execution, user) -> str:
    response = client_for(user).get(f"/api/executions/{execution.pk}/logs/")
    assert response.status_code == 200
    return "".join(chunk["text"] for chunk in response.json())


def websocket_text(execution, user) -> str:
    """Every log text the run's websocket sends, from the start to its end message."""

    async def read() -> str:
        path = f"/ws/executions/{execution.pk}/?after=-1"
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        assert connected
        texts = []
        while True:
            message = await communicator.receive_json_from(10)
            if message["type"] == "log":
                texts.append(message["text"])
            elif message["type"] == "end":
                break
        await communicator.disconnect()
        return "".join(texts)

    return async_to_sync(read)()


def script_run(project, registry, git_server, script: str, dockerfile: str = "", variables=()):
    files = sample_app_files()
    if dockerfile:
        files["Dockerfile"] = dockerfile
    workflow, _ = make_git_workflow(
        project, git_server, files, registry=registry, scripts={"pre_build": script}
    )
    for key, value in variables:
        CIVariable.objects.create(
            workflow=workflow, key=key, secret_value=value, is_secret=True, scope="runtime"
        )
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    return execution


# The engine keeps the order of stdout and stderr only for writes some time apart: hence the
# sleeps where the script switches streams.
PROGRESS_SCRIPT = r"""
i=0; bar=""
while [ $i -lt 1284 ]; do
  while [ ${#bar} -lt $((i * 50 / 1283)) ]; do bar="$bar#"; done
  printf '\rDownloading [%-50s] %3d%%' "$bar" $((i * 100 / 1283))
  i=$((i + 1))
done
printf '\n'
printf 'caf\303'; sleep 0.2; printf '\251\n'; sleep 0.2
printf 'na\303' >&2; sleep 0.2; printf '\257ve\n' >&2; sleep 0.2
printf 'x\n\342\202'; sleep 0.2; printf 'between\n' >&2; sleep 0.2; printf '\254 euro\n'
printf 'bad \377 byte\n'
printf '\033[31mred\033[0m and \033[1;32mbold green\033[0m\n'
printf 'step 1/3\r\033[Kstep 2/3\r\033[2Kstep 3/3 \033[32mdone\033[0m\n'
printf 'windows line\r\n'
"""


def test_progress_bar_multibyte_and_colours(engine, project, registry, git_server, users):
    """The 1,284-redraw progress line keeps its 100 % state; `café` written in two pieces (and
    `naïve` on stderr, and `€` with a stderr line in between) is whole; invalid bytes are
    replaced; colour codes reach the API and the websocket as printed."""
    # A step of its own (the marker): a layer cached by an earlier run would print nothing.
    dockerfile = (
        "FROM localhost/busybox:latest\n"
        f"RUN : {unique_name('log')} && printf 'build 10%%\\rbuild 50%%\\rbuild 100%%\\n'\n"
        "COPY index.html /www/index.html\n"
    )
    execution = script_run(project, registry, git_server, PROGRESS_SCRIPT, dockerfile)

    text = api_text(execution, users["carol"])
    assert api_chunks_text(execution, users["carol"]) == text
    assert websocket_text(execution, users["carol"]) == text
    lines = text.split("\n")
    progress = [line for line in lines if "Downloading" in line]
    assert progress == [f"Downloading [{'#' * 50}] 100%"]
    assert "\r" not in text
    # Redraws collapsed: no line grows with them (the build's LABEL step names four labels).
    assert max(len(line) for line in lines if " LABEL " not in line) < 200
    assert "café" in lines
    assert "naïve" in lines, [line for line in lines if "na" in line or "ve" in line]
    assert "€ euro" in lines and "between" in lines
    assert "bad \ufffd byte" in lines
    assert text.count("\ufffd") == 1
    assert "\x1b[31mred\x1b[0m and \x1b[1;32mbold green\x1b[0m" in lines
    assert "step 3/3 \x1b[32mdone\x1b[0m" in lines
    assert "windows line" in lines
    assert "build 100%" in lines  # the Build stage's RUN output, through the engine's JSON


LONG_SCRIPT = r"""
head -c 16377 /dev/zero | tr '\0' x; printf '%s tail\n' "$DEPLOY_PASSWORD"
head -c 40000 /dev/zero | tr '\0' y; printf '\n'
printf 'p@ss/'; sleep 0.2; printf 'w0rd+&=?x split across writes\n'
printf '%s' "$DEPLOY_PASSWORD" | base64
echo "$DEPLOY_PASSWORD" | base64
printf 'user:%s' "$DEPLOY_PASSWORD" | base64
printf '%s' "$DEPLOY_PASSWORD" | od -An -tx1 | tr -d ' \n'; echo
printf '%s' "$DEPLOY_PASSWORD" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; echo
"""


def encodings(value: str) -> dict[str, str]:
    """The secret as the script's literal lines print it (computed here with the stdlib)."""
    raw = value.encode()
    return {
        "url": quote(value, safe=""),
        "url-plus": quote_plus(value),
        "url-lower": quote(value, safe="").lower(),
        "json": json.dumps(value)[1:-1].replace("/", "\\/"),  # PHP's json_encode
        "base64-url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "shell": "p@ss/w0rd+\\&=\\?x",  # bash `printf %q`
        "html": "p@ss/w0rd+&amp;=?x",
    }


def test_secrets_masked_in_encodings_and_before_long_lines_split(
    engine, project, registry, git_server, users
):
    """`p@ss/w0rd+&=?x` printed raw, URL-encoded (`p%40ss%2Fw0rd%2B%26%3D%3Fx`), in base64,
    hex, JSON, shell and HTML escaping, in two writes, and at the 16 KiB line cap: never shown,
    in whole or in part; long lines come back whole when the pieces are joined."""
    forms = encodings(SECRET)
    assert forms["url"] == "p%40ss%2Fw0rd%2B%26%3D%3Fx"
    script = LONG_SCRIPT + "".join(
        f"printf '%s\\n' '{name}: {form}'\n" for name, form in forms.items()
    )
    execution = script_run(
        project, registry, git_server, script, variables=[("DEPLOY_PASSWORD", SECRET)]
    )

    text = api_text(execution, users["carol"])
    assert websocket_text(execution, users["carol"]) == text
    raw = SECRET.encode()
    shown = [
        SECRET,
        SECRET[:7],  # either half of a secret cut at the cap
        SECRET[7:],
        base64.b64encode(raw).decode().rstrip("="),
        base64.b64encode(raw + b"\n").decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        *forms.values(),
    ]
    assert [form for form in shown if form in text] == []
    lines = text.split("\n")
    assert all(len(line) <= MAX_LINE_LENGTH for line in lines)
    whole = text.replace(CONTINUED + "\n", "").split("\n")
    assert "x" * 16377 + "*** tail" in whole
    assert "y" * 40000 in whole
    # Masked first, then split: the first piece ends in the mask and the marker.
    first = lines.index("x" * 16377 + "*** ta" + CONTINUED)
    assert lines[first + 1] == "il"
    assert "*** split across writes" in lines
    for name in forms:
        assert f"{name}: ***" in text, name
    assert "dXNlcjp" in text and "***" in text.split("dXNlcjp")[1].split("\n")[0]
