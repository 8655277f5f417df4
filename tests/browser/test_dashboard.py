"""The live dashboard in Chromium against the real ASGI server: a run started in one tab
appears and progresses in another tab's dashboard without a reload; filters stay in the URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executions.models import Execution, StageRun
from executions.services import do_change_stage_status, do_change_status
from executions.status import ExecutionStatus as S

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def second_session(browser, user, base_url):
    """A page with a session of its own (page_as's client would end the first user's)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    context = browser.new_context()
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}]
    )
    return context.new_page()


def test_run_started_in_one_tab_appears_and_progresses_in_another(
    workflow, users, asgi_server, page_as, browser
):
    dashboard = page_as(users["carol"], asgi_server)
    dashboard.goto(f"{asgi_server}/")
    dashboard.wait_for_selector("body[data-live='true']", timeout=10000)
    row = f"tr[data-workflow='{workflow.pk}']"
    assert "never run" in dashboard.inner_text(row)

    other = second_session(browser, users["bob"], asgi_server)
    other.goto(f"{asgi_server}/workflows/{workflow.pk}/")
    csrf = other.context.cookies()
    started = other.evaluate(
        """async ([id, csrf]) => {
            const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken='));
            const r = await fetch(`/api/workflows/${id}/run/`, {method: 'POST',
              credentials: 'same-origin', headers: {'Content-Type': 'application/json',
              'X-CSRFToken': token ? token.split('=')[1] : csrf}, body: '{"branch": "main"}'});
            return [r.status, await r.json()];
        }""",
        [workflow.pk, next((c["value"] for c in csrf if c["name"] == "csrftoken"), "")],
    )
    assert started[0] == 201, started
    run_id = started[1]["id"]

    dashboard.wait_for_selector(f"{row} [data-testid='last-status']:text('Pending')", timeout=10000)
    dashboard.wait_for_selector(f"[data-testid='runs'] tr[data-run='{run_id}']", timeout=10000)
    execution = Execution.objects.get(pk=run_id)
    do_change_status(execution, S.RUNNING)  # the worker claims it
    dashboard.wait_for_selector(f"{row} [data-testid='last-status']:text('Running')", timeout=10000)
    source = execution.stages.get(kind="source")
    do_change_stage_status(source, "running")
    do_change_stage_status(source, "succeeded")
    StageRun.objects.filter(execution=execution).exclude(pk=source.pk).update(status="succeeded")
    do_change_status(execution, S.SUCCEEDED)
    dashboard.wait_for_selector(
        f"{row} [data-testid='last-status']:text('Succeeded')", timeout=10000
    )
    assert "main" in dashboard.inner_text(row) and "bob" in dashboard.inner_text(row)


def test_waiting_for_me_count_is_live(workflow, users, asgi_server, page_as):
    from executions.engine import Engine
    from executions.services import do_create_execution

    page = page_as(users["dave"], asgi_server)
    page.goto(f"{asgi_server}/")
    page.wait_for_selector("body[data-live='true']", timeout=10000)
    assert page.inner_text("[data-testid='waiting-count']") == "0"
    execution = do_create_execution(
        workflow, ref="main", trigger="manual", triggered_by=users["bob"]
    )
    do_change_status(execution, S.RUNNING)
    for stage in execution.stages.exclude(name="Deploy prod"):
        StageRun.objects.filter(pk=stage.pk).update(status="succeeded")
    Engine(Execution.objects.get(pk=execution.pk)).gate(execution.stages.get(name="Deploy prod"))
    page.wait_for_function(
        "document.querySelector(\"[data-testid='waiting-count']\").textContent === '1'",
        timeout=10000,
    )


def test_filters_stay_in_the_url_and_axe_is_clean(workflow, users, asgi_server, page_as):
    from executions.services import do_create_execution

    for ref in ("main", "feature/x", "main"):
        do_create_execution(workflow, ref=ref, ref_kind="branch", trigger="manual")
    page = page_as(users["carol"], asgi_server)
    page.goto(f"{asgi_server}/")
    page.fill("input[name='branch']", "feature/x")
    page.click("#filters button[type='submit']")
    page.wait_for_url("**branch=feature%2Fx**")
    assert page.locator("[data-testid='runs'] tbody tr").count() == 1
    page.reload()
    assert page.input_value("input[name='branch']") == "feature/x"
    assert page.locator("[data-testid='runs'] tbody tr").count() == 1

    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document.querySelector('main'))).violations")
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], json.dumps(serious, indent=1)
