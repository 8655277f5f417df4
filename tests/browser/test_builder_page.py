"""The workflow page in headless Chromium draws the pipeline from the API, in order, with gates."""

from __future__ import annotations

import pytest

# The live server thread and the test share the file database, so data must be committed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_pipeline_graph_in_order_with_gates(workflow, users, live_server, logged_in_page, tmp_path):
    page = logged_in_page(users["carol"])
    page.goto(f"{live_server.url}/workflows/{workflow.pk}/")
    page.wait_for_selector("#workflow-builder[data-state='ready']", timeout=15000)
    ids = page.eval_on_selector_all(
        "[data-testid^='node-']", "els => els.map(e => e.dataset.testid)"
    )
    assert ids == [
        "node-source",
        "node-pre_build",
        "node-build",
        "node-push",
        "node-deploy:dev",
        "node-deploy:staging",
        "node-deploy:prod",
    ]
    assert "manual" in page.inner_text("[data-testid='node-deploy:staging']").lower()
    prod = page.inner_text("[data-testid='node-deploy:prod']").lower()
    assert "approval" in prod and "dave" in prod
    assert page.locator(".react-flow__edge").count() == 6
    page.screenshot(path=str(tmp_path / "builder.png"))


def test_api_error_is_shown_not_blank(workflow, users, live_server, logged_in_page):
    page = logged_in_page(users["carol"])
    page.route(
        "**/api/workflows/*/",
        lambda route: route.fulfill(
            status=403,
            content_type="application/json",
            body='{"detail": "You do not have permission to perform this action."}',
        ),
    )
    page.goto(f"{live_server.url}/workflows/{workflow.pk}/")
    page.wait_for_selector("#workflow-builder[data-state='error']", timeout=15000)
    message = page.inner_text("[data-testid='builder-error']")
    assert "403" in message and "permission" in message
