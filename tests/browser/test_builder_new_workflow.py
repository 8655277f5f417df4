"""The builder from the keyboard and for a new workflow: the home page's link to a new
workflow, built and saved from the browser; Escape closes the review and conflict dialogs
without acting; Enter on a focused node opens its panel; axe-core on the editing page (Admin)
with each kind of panel open, the YAML tab and both dialogs."""

from __future__ import annotations

import json

import pytest

from tests import base
from tests.browser.test_workflow_builder import AXE, open_builder
from workflows.document import workflow_document
from workflows.models import Workflow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def serious_violations(page) -> list:
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text())
    result = page.evaluate("async () => (await axe.run(document.querySelector('main'))).violations")
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def test_new_workflow_from_the_home_page(workflow, users, live_server, logged_in_page):
    service = workflow.service
    before = Workflow.objects.filter(service=service).count()
    viewer = logged_in_page(users["carol"])
    viewer.goto(f"{live_server.url}/")
    assert viewer.locator("[data-testid='new-workflow-links']").count() == 0

    page = logged_in_page(users["alice"])
    page.goto(f"{live_server.url}/")
    page.click(f"[data-testid='new-workflow-{service.pk}']")
    page.wait_for_selector("#workflow-builder[data-state='ready']", timeout=15000)
    assert page.url.endswith(f"/services/{service.pk}/workflows/new/")
    assert page.inner_text(".wfb-toolbar strong") == "New workflow"
    page.fill("[data-testid='field-name']", "nightly-checks")
    # Keyboard only: arm the palette's script, then press the + between Source and Build.
    page.focus("[data-testid='palette-script']")
    page.keyboard.press("Enter")
    page.focus("[data-testid='insert-source-build']")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid='script-editor-pre_build']")
    page.click("[data-testid='script-editor-pre_build']")
    page.keyboard.press("Control+a")
    page.keyboard.type("make lint")

    page.click("[data-testid='save']")
    assert "+name: nightly-checks" in page.inner_text("[data-testid='diff']")
    page.keyboard.press("Escape")  # review closed, nothing saved, edits kept
    page.wait_for_selector("[data-testid='dialog-diff']", state="detached")
    assert not Workflow.objects.filter(service=service, name="nightly-checks").exists()
    page.wait_for_function("document.activeElement.dataset.testid === 'save'", timeout=5000)
    page.keyboard.press("Enter")
    page.click("[data-testid='confirm-save']")
    page.wait_for_url("**/workflows/*/builder/", timeout=15000)
    page.wait_for_selector("#workflow-builder[data-state='ready']", timeout=15000)
    created = Workflow.objects.get(service=service, name="nightly-checks")
    assert page.url.endswith(f"/workflows/{created.pk}/builder/")
    doc = workflow_document(created)
    assert doc["pipeline_type"] == "ci" and doc["scripts"]["pre_build"] == "make lint"
    assert not created.is_default
    assert Workflow.objects.filter(service=service).count() == before + 1


def test_enter_selects_a_node_and_escape_closes_the_conflict_dialog(
    workflow, users, live_server, logged_in_page
):
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    page.focus(".react-flow__node[data-id='build']")
    page.keyboard.press("Enter")
    assert page.inner_text("#wfb-panel-title") == "Build"
    page.focus(".react-flow__node[data-id='gate:2']")
    page.keyboard.press("Enter")
    assert page.inner_text("#wfb-panel-title") == "Gate before prod"

    # Someone else saves through the API while this page is open.
    doc = workflow_document(workflow)
    doc["build"]["volume_size_gb"] = 40
    answer = base.client_for(users["bob"]).put(
        f"/api/workflows/{workflow.pk}/", json.dumps(doc), content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    page.focus(".react-flow__node[data-id='build']")
    page.keyboard.press("Enter")
    page.fill("[data-testid='field-build.volume_size_gb']", "50")
    page.click("[data-testid='save']")
    page.click("[data-testid='confirm-save']")
    page.wait_for_selector("[data-testid='dialog-conflict']")
    assert "bob saved this workflow" in page.inner_text("[data-testid='conflict-detail']")
    page.keyboard.press("Escape")
    page.wait_for_selector("[data-testid='dialog-conflict']", state="detached")
    # Neither reloaded nor overwritten: my edit is still here and unsaved, bob's is stored.
    assert page.input_value("[data-testid='field-build.volume_size_gb']") == "50"
    assert page.get_attribute(".wfb-editor__layout", "data-dirty") == "true"
    assert Workflow.objects.get(pk=workflow.pk).volume_size_gb == 40


def test_axe_on_the_editing_page_with_every_kind_of_panel(
    workflow, users, live_server, logged_in_page
):
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    found = {"workflow settings": serious_violations(page)}
    for node, title in (
        ("source", "Source"),
        ("pre_build", "Pre-build script"),
        ("scanner:detect_secrets", "Scan: detect-secrets"),
        ("build", "Build"),
        ("push", "Push"),
        ("deploy:0", "Deploy to dev"),
        ("gate:2", "Gate before prod"),
    ):
        page.click(f".react-flow__node[data-id='{node}']")
        assert page.inner_text("#wfb-panel-title") == title
        if node == "pre_build":
            page.wait_for_selector("[data-testid='script-editor-pre_build']")
        found[title] = serious_violations(page)
    page.click("[data-testid='workflow-settings']")
    page.fill("[data-testid='field-deploy.cron_schedule']", "*/15 * * * *")
    page.wait_for_selector("[data-testid='cron-next']")
    page.click("[data-testid='save']")
    page.wait_for_selector("[data-testid='dialog-diff']")
    found["review dialog"] = serious_violations(page)
    page.keyboard.press("Escape")
    page.click("[data-testid='tab-yaml']")
    page.wait_for_selector("[data-testid='yaml-editor']")
    found["YAML tab"] = serious_violations(page)
    found = {where: v for where, v in found.items() if v}
    assert found == {}, json.dumps(found, indent=1)


def test_scripts_a_pre_built_image_does_not_run_are_explained_and_editable(
    service, environments, registry, users, live_server, logged_in_page
):
    doc = base.app_cd_document(
        name="release-image",
        source={"kind": "image", "image": "127.0.0.1:5000/demo/web:1", "trigger": "manual"},
    )
    doc["scripts"] = {**doc["scripts"], "pre_build": "make lint", "post_deploy": "echo done"}
    workflow = base.save_document(service, doc)
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    assert "pre_build" not in page.eval_on_selector_all(
        ".react-flow__node", "els => els.map(e => e.dataset.id)"
    )
    assert "1 script not run" in page.inner_text("[data-testid='workflow-settings']")
    page.click("[data-testid='workflow-settings']")
    hidden = page.inner_text("[data-testid='hidden-script-pre_build']")
    assert "A pre-built image is not built or pushed here" in hidden
    page.wait_for_selector("[data-testid='script-editor-pre_build']")
    page.click("[data-testid='script-editor-pre_build']")
    page.keyboard.press("Control+a")
    page.keyboard.type("make test")
    page.click("[data-testid='save']")
    assert "+  pre_build: make test" in page.inner_text("[data-testid='diff']")
    page.click("[data-testid='confirm-save']")
    page.wait_for_selector("text=Saved (version 2)", timeout=10000)
    assert workflow_document(Workflow.objects.get(pk=workflow.pk))["scripts"]["pre_build"] == (
        "make test"
    )
    page.click("[data-testid='clear-script-pre_build']")
    page.wait_for_selector("[data-testid='hidden-scripts']", state="detached")
    assert "not run" not in page.inner_text("[data-testid='workflow-settings']")
