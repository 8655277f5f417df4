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
        "node-scanner:detect_secrets",
        "node-build",
        "node-push",
        "node-deploy:dev",
        "node-gate:staging",
        "node-deploy:staging",
        "node-gate:prod",
        "node-deploy:prod",
        "node-end",
    ]
    assert "manual" in page.inner_text("[data-testid='node-gate:staging']").lower()
    prod = page.inner_text("[data-testid='node-gate:prod']").lower()
    assert "1 of dave" in prod
    assert page.locator(".react-flow__edge").count() == 10
    xs = page.eval_on_selector_all(
        "[data-testid^='node-']", "els => els.map(e => e.getBoundingClientRect().x)"
    )
    assert xs == sorted(xs)  # left to right in pipeline order
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


def test_analytics_page_draws_charts_and_filters(workflow, users, live_server, logged_in_page):
    from tests.executions.test_analytics import make_runs

    make_runs(workflow)
    page = logged_in_page(users["carol"])
    page.goto(f"{live_server.url}/analytics/")
    page.wait_for_selector("body[data-stats-total='4']", timeout=15000)
    assert "success rate 67%" in page.inner_text("[data-testid='summary']")
    assert page.evaluate("Chart.getChart('by-day').data.datasets.length") == 3
    # Every chart has a table with the same numbers as the summary.
    page.click("[data-testid='table-by-status'] >> xpath=.. >> summary")
    rows = page.eval_on_selector_all(
        "[data-testid='table-by-status'] tbody tr",
        "trs => trs.map(tr => [...tr.cells].map(c => c.textContent))",
    )
    assert rows == [["running", "1"], ["succeeded", "2"], ["failed", "1"]]
    assert page.locator("[data-testid='table-queue']").count() == 1
    page.select_option("[data-testid='period']", "30d")
    page.wait_for_selector("body[data-stats-total='5']", timeout=15000)
    assert "success rate 50% of ended runs (2 succeeded)" in page.inner_text(
        "[data-testid='summary']"
    )


def test_webhook_card_shows_urls_and_secret_once(workflow, users, live_server, logged_in_page):
    page = logged_in_page(users["alice"])
    page.goto(f"{live_server.url}/workflows/{workflow.pk}/")
    page.wait_for_selector("[data-testid='webhook-providers'] li", timeout=15000)
    providers = page.inner_text("[data-testid='webhook-providers']")
    assert "/hooks/github/" in providers and "/hooks/gitlab/" in providers
    assert "/hooks/bitbucket/" in providers
    assert page.inner_text("[data-testid='webhook-secret']") == ""
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("[data-testid='webhook-rotate']")
    page.wait_for_function(
        "document.getElementById('webhook-secret').textContent.length > 20",
        timeout=10000,
    )
    page.reload()
    page.wait_for_selector("[data-testid='webhook-providers'] li", timeout=15000)
    assert page.inner_text("[data-testid='webhook-secret']") == ""  # shown once only
