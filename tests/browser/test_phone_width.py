"""Every page a person reads on a phone (390 px wide) fits the screen: nothing scrolls the whole
page sideways. Wide tables scroll inside their own box; long image references and digests wrap."""

from __future__ import annotations

import pytest

from executions.models import Execution
from executions.services import do_change_status, do_create_execution
from executions.status import ExecutionStatus as S
from tests.browser.test_product_roles import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]
LONG_IMAGE = "registry.example.org:5000/" + "team-" * 12 + "web:" + "feature-" * 6 + "x"
DIGEST = "sha256:" + "ab" * 32


def a_run_with_long_references(workflow) -> Execution:
    execution = do_create_execution(
        workflow, ref="feature/" + "very-long-branch-name-" * 4, ref_kind="branch", trigger="manual"
    )
    do_change_status(execution, S.RUNNING)
    Execution.objects.filter(pk=execution.pk).update(image=LONG_IMAGE, image_digest=DIGEST)
    return execution


def test_pages_fit_a_phone_screen(users, project, workflow, asgi_server, browser):
    execution = a_run_with_long_references(workflow)
    page = sign_in(browser, asgi_server, "alice")
    page.set_viewport_size({"width": 390, "height": 844})
    pages = {
        "home": "/",
        "run": f"/executions/{execution.pk}/",
        "workflow": f"/workflows/{workflow.pk}/",
        "project settings": f"/projects/{project.pk}/",
        "approvals": "/approvals/",
        "analytics": "/analytics/",
        "what runs where": f"/services/{workflow.service_id}/where/",
    }
    too_wide = {}
    for name, path in pages.items():
        page.goto(asgi_server + path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            too_wide[name] = width
    assert too_wide == {}, f"pages wider than the 390 px screen: {too_wide}"
