"""The log endpoint: ordered chunks after a sequence number, plain text, secrets masked."""

from __future__ import annotations

import base64

import pytest

from executions.logs import LogWriter
from executions.services import do_create_execution
from tests.base import client_for

pytestmark = pytest.mark.django_db


def test_logs_after_and_as_text(workflow, users):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    secret = "line-one-secret\nline-two-secret"
    writer = LogWriter(execution, secrets=[secret])
    writer.set_stage(execution.stages.first())
    writer.write("cloning\nthe token is line-one-secret, encoded ")
    writer.write(base64.b64encode(b"line-two-secret").decode() + "\n")
    writer.flush()
    writer.line("done")
    writer.flush(final=True)

    client = client_for(users["carol"])
    chunks = client.get(f"/api/executions/{execution.pk}/logs/").json()
    assert [c["seq"] for c in chunks] == [0, 1]
    assert client.get(f"/api/executions/{execution.pk}/logs/?after=0").json()[0]["text"] == "done\n"
    text = client.get(f"/api/executions/{execution.pk}/logs/?as=text")
    assert text["Content-Type"].startswith("text/plain")
    assert text.content.decode() == "cloning\nthe token is ***, encoded ***\ndone\n"
