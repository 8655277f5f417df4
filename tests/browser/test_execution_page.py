"""The live execution page in Chromium against the real ASGI server: the log replays, new lines
and status changes stream in over the websocket, buttons act through the API."""

from __future__ import annotations

import pytest

from executions.logs import LogWriter
from executions.models import Execution
from executions.services import do_change_status, do_create_execution
from executions.status import ExecutionStatus as S

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def write(execution, *lines):
    writer = LogWriter(Execution.objects.get(pk=execution.pk), secrets=["s3cr3t-npm-token"])
    writer.set_stage(execution.stages.first())
    for line in lines:
        writer.line(line)
    writer.flush(final=True)


def test_log_streams_live_and_run_ends(workflow, users, asgi_server, page_as):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    do_change_status(execution, S.RUNNING)
    write(execution, "first line", "second line")
    page = page_as(users["carol"], asgi_server)
    page.goto(f"{asgi_server}/executions/{execution.pk}/")
    page.wait_for_function(
        "document.getElementById('log').textContent.includes('second line')", timeout=10000
    )
    assert page.inner_text("[data-testid='run-status']") == "Running"

    write(execution, "third line with s3cr3t-npm-token")
    page.wait_for_function(
        "document.getElementById('log').textContent.includes('third line')", timeout=10000
    )
    do_change_status(execution, S.SUCCEEDED)
    page.wait_for_selector("body[data-run-ended='succeeded']", timeout=10000)
    assert page.inner_text("[data-testid='run-status']") == "Succeeded"
    log = page.inner_text("[data-testid='log']")
    assert log.splitlines() == ["first line", "second line", "third line with ***"]


def test_terminate_button(workflow, users, asgi_server, page_as):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    page = page_as(users["bob"], asgi_server)
    page.goto(f"{asgi_server}/executions/{execution.pk}/")
    page.click("[data-testid='terminate']")
    page.wait_for_selector("body[data-run-ended='terminated']", timeout=10000)
    assert Execution.objects.get(pk=execution.pk).status == "terminated"


def test_viewer_cannot_terminate(workflow, users, asgi_server, page_as):
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    page = page_as(users["carol"], asgi_server)
    page.goto(f"{asgi_server}/executions/{execution.pk}/")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.click("[data-testid='terminate']")
    error = page.locator("[data-testid='action-error']")
    error.filter(has_text="permission").wait_for(timeout=10000)
    assert error.inner_text() == 'This needs the "Change workflow" permission.'
    assert dialogs == []  # inline, never an alert()
    assert Execution.objects.get(pk=execution.pk).status == "pending"


def test_approver_sees_waiting_list_and_approves(workflow, users, asgi_server, page_as):
    from approvals.models import ApprovalRequest
    from executions.engine import Engine
    from executions.models import StageRun

    execution = do_create_execution(
        workflow, ref="main", trigger="manual", triggered_by=users["bob"]
    )
    do_change_status(execution, S.RUNNING)
    for stage in execution.stages.exclude(name="Deploy prod"):
        StageRun.objects.filter(pk=stage.pk).update(status="succeeded")
    prod = execution.stages.get(name="Deploy prod")
    Engine(Execution.objects.get(pk=execution.pk)).gate(prod)  # the run reaches the gate
    assert Execution.objects.get(pk=execution.pk).status == "approval_pending"

    page = page_as(users["dave"], asgi_server)
    page.goto(f"{asgi_server}/approvals/")
    page.click(f"text={execution}")
    page.fill("#approval-comment", "looks good")
    page.click("[data-testid='approve']")
    page.wait_for_selector("text=Decision recorded: approved", timeout=10000)
    assert ApprovalRequest.objects.get(execution=execution).status == "approved"
    assert Execution.objects.get(pk=execution.pk).status == "running"
