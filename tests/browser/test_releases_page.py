"""The releases page in Chromium: roll back to an earlier release, see who rolled back; axe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executions.models import Execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def test_rollback_from_the_releases_page(workflow, users, live_server, logged_in_page, settings):
    from tests.deploy.test_dora import seed

    settings.EXECUTIONS_RUN_INLINE = False  # the rollback run is queued, not played here
    _, _prod, releases = seed(workflow, users)
    page = logged_in_page(users["bob"])
    page.goto(f"{live_server.url}/workflows/{workflow.pk}/")
    page.click("[data-testid='releases-link']")
    page.click("[data-testid='env-link-prod']")
    assert page.locator(f"[data-testid='rollback-{releases['R4'].pk}']").count() == 0
    page.click(f"[data-testid='rollback-{releases['R1'].pk}']")
    page.wait_for_selector("[data-testid='message']:has-text('Rollback started')")
    rollback = Execution.objects.get(trigger="rollback", triggered_by=users["bob"])
    assert rollback.trigger_detail == f"rollback of prod to release #{releases['R1'].pk}"
    assert "period=" not in page.url or "environment=" in page.url

    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document.querySelector('main'))).violations")
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], json.dumps(serious, indent=1)
