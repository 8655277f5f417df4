"""The visual builder as a user: build the demo's `deliver` pipeline from a new service's
default workflow by drag and drop and the panel, save; errors on the node; the two-editor
conflict; the YAML tab; a Viewer's read-only page with no serious accessibility violations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from tests import base
from workflows.document import workflow_document
from workflows.models import Workflow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def fresh(project, environments, registry):
    """A new service: its default workflow is CI, git, main branch, pushing to `local`."""
    service = base.make_service(project, name="shop")
    return service.workflows.get(is_default=True)


def page_with_own_session(browser, live_server, user):
    """Two users at once need two sessions (one test client would log the first one out)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context.new_page()


def open_builder(page, live_server, workflow):
    page.set_viewport_size({"width": 2400, "height": 1000})  # the whole pipeline on screen
    page.goto(f"{live_server.url}/workflows/{workflow.pk}/builder/")
    page.wait_for_selector("#workflow-builder[data-state='ready']", timeout=15000)


def drop(page, item, source, target):
    page.wait_for_timeout(100)  # the canvas refits after each change
    page.locator(f"[data-testid='palette-{item}']").drag_to(
        page.locator(f"[data-testid='insert-{source}-{target}']")
    )


def node_ids(page):
    return page.eval_on_selector_all(
        ".react-flow__node", "els => els.map(e => e.getAttribute('data-id'))"
    )


def test_build_the_deliver_pipeline_by_drag_and_drop(fresh, users, live_server, logged_in_page):
    Group.objects.get(name="Approver").user_set.add(users["dave"])
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, fresh)
    assert node_ids(page) == ["source", "build", "push", "end"]

    # Post-build script, by drag and drop, then its text in the shell editor.
    drop(page, "script", "build", "push")
    assert "post_build" in node_ids(page)
    editor = page.locator("[data-testid='script-editor-post_build']")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("echo smoke test && test -f /www/index.html")

    # A CI workflow refuses environments, and says why.
    drop(page, "environment", "push", "end")
    assert "CI workflow does not deploy" in page.inner_text("[data-testid='builder-message']")

    page.click("[data-testid='workflow-settings']")
    page.select_option("[data-testid='field-pipeline_type']", "app_cd")
    page.fill("[data-testid='field-deploy.port']", "8080")
    page.fill("[data-testid='field-name']", "deliver")

    # Source: automatic, main + release/* (wildcard), checked with the tester.
    page.click(".react-flow__node[data-id='source']")
    page.select_option("[data-testid='field-source.trigger']", "automatic")
    page.click("text=Add branch rule")
    page.fill("[data-testid='field-source.branches[1].pattern']", "release/*")
    page.select_option("[data-testid='field-source.branches[1].match']", "wildcard")
    page.fill("[data-testid='branch-tester']", "release/1.2")
    assert "matches release/1.2" in page.inner_text("[data-testid='branch-tester-result']")

    # Three environments in order, a manual gate and a 1-of-Approver gate.
    drop(page, "environment", "push", "end")
    drop(page, "environment", "deploy:0", "end")
    drop(page, "environment", "deploy:1", "end")
    drop(page, "gate:manual", "deploy:0", "deploy:1")
    drop(page, "gate:manual", "gate:1", "deploy:1")
    assert "already started by hand" in page.inner_text("[data-testid='builder-message']")
    drop(page, "gate:approval", "gate:1", "deploy:1")
    drop(page, "gate:approval", "deploy:1", "deploy:2")
    page.click("[data-testid='approver-Approver']")
    # The approval put on staging was a mistake: set its approvals back to 0 in the panel.
    page.click(".react-flow__node[data-id='gate:1']")
    page.fill("[data-testid='field-deploy.environments[1].required_approvals']", "0")

    page.click("[data-testid='save']")
    assert "+name: deliver" in page.inner_text("[data-testid='diff']")
    page.click("[data-testid='confirm-save']")
    page.wait_for_selector("text=Saved (version 2)", timeout=10000)

    doc = workflow_document(Workflow.objects.get(pk=fresh.pk))
    assert doc["name"] == "deliver" and doc["pipeline_type"] == "app_cd"
    assert doc["source"]["trigger"] == "automatic"
    assert doc["source"]["branches"] == [
        {"pattern": "main", "match": "exact"},
        {"pattern": "release/*", "match": "wildcard"},
    ]
    assert doc["scripts"]["post_build"] == "echo smoke test && test -f /www/index.html"
    steps = [
        (e["environment"], e["mode"], e["required_approvals"], e["approvers"])
        for e in doc["deploy"]["environments"]
    ]
    assert steps == [
        ("dev", "automatic", 0, {"users": [], "groups": []}),
        ("staging", "manual", 0, {"users": [], "groups": []}),
        ("prod", "automatic", 1, {"users": [], "groups": ["Approver"]}),
    ]


def test_undo_redo_delete_and_reorder(workflow, users, live_server, logged_in_page):
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    page.click(".react-flow__node[data-id='deploy:0']")
    page.keyboard.press("Delete")
    assert "node-deploy:dev" not in page.eval_on_selector_all(
        "[data-testid^='node-']", "els => els.map(e => e.dataset.testid)"
    )
    page.keyboard.press("Control+z")
    page.wait_for_selector("[data-testid='node-deploy:dev']")
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector("[data-testid='node-deploy:dev']", state="detached")
    page.keyboard.press("Control+z")
    # Drag dev after prod: the environments are reordered.
    dev = page.locator("[data-testid='node-deploy:dev']").bounding_box()
    prod = page.locator("[data-testid='node-deploy:prod']").bounding_box()
    page.mouse.move(dev["x"] + 20, dev["y"] + 20)
    page.mouse.down()
    page.mouse.move(prod["x"] + prod["width"] + 40, dev["y"] + 20, steps=12)
    page.mouse.up()
    testids = page.eval_on_selector_all(
        ".react-flow__node[data-id^='deploy:']", "els => els.map(e => e.dataset.testid)"
    )
    assert testids == ["node-deploy:staging", "node-deploy:prod", "node-deploy:dev"]
    # Source cannot be deleted, and the message says why.
    page.click(".react-flow__node[data-id='source']")
    page.keyboard.press("Delete")
    assert "cannot be deleted" in page.inner_text("[data-testid='builder-message']")


def test_validation_error_lands_on_the_node_and_field(
    workflow, users, live_server, logged_in_page, environments
):
    environments[2].is_active = False
    environments[2].save()
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    page.click(".react-flow__node[data-id='build']")
    page.fill("[data-testid='field-build.dockerfile']", "docker/Dockerfile")
    page.click("[data-testid='save']")
    page.click("[data-testid='confirm-save']")
    page.wait_for_selector("[data-testid='node-deploy:prod'] [data-testid='node-error']")
    assert page.locator("[data-testid='node-error']").count() == 1
    # The panel opened on the node, with the message under the field.
    assert page.inner_text("#wfb-panel-title") == "Deploy to prod"
    assert 'environment "prod" is inactive' in page.inner_text("[data-testid='field-error']")
    assert Workflow.objects.get(pk=workflow.pk).dockerfile == "Dockerfile"


def test_two_editors_conflict_then_reload_or_overwrite(workflow, users, live_server, browser):
    first = page_with_own_session(browser, live_server, users["alice"])
    second = page_with_own_session(browser, live_server, users["bob"])
    open_builder(first, live_server, workflow)
    open_builder(second, live_server, workflow)
    for page in (first, second):
        page.click(".react-flow__node[data-id='build']")
        page.fill("[data-testid='field-build.volume_size_gb']", "30" if page is first else "40")
    first.click("[data-testid='save']")
    first.click("[data-testid='confirm-save']")
    first.wait_for_selector("text=Saved (version 2)")
    second.click("[data-testid='save']")
    second.click("[data-testid='confirm-save']")
    second.wait_for_selector("[data-testid='dialog-conflict']")
    assert "alice saved this workflow" in second.inner_text("[data-testid='conflict-detail']")
    assert Workflow.objects.get(pk=workflow.pk).volume_size_gb == 30
    second.click("[data-testid='conflict-overwrite']")
    second.wait_for_selector("text=Saved (version 3)")
    assert Workflow.objects.get(pk=workflow.pk).volume_size_gb == 40
    # The first editor is now behind: it reloads and sees bob's value.
    first.fill("[data-testid='field-build.volume_size_gb']", "50")
    first.click("[data-testid='save']")
    first.click("[data-testid='confirm-save']")
    first.wait_for_selector("[data-testid='dialog-conflict']")
    first.click("[data-testid='conflict-reload']")
    first.wait_for_selector("#workflow-builder[data-state='ready']")
    first.click(".react-flow__node[data-id='build']")
    first.wait_for_function(
        "document.querySelector(\"[data-testid='field-build.volume_size_gb']\").value === '40'",
        timeout=10000,
    )


def test_same_edit_in_the_yaml_tab(workflow, users, live_server, logged_in_page):
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    page.click("[data-testid='tab-yaml']")
    editor = page.locator("[data-testid='yaml-editor']")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nbroken: [")
    error = page.inner_text("[data-testid='yaml-error']")
    assert error.startswith("Line ") and "column" in error
    for _ in range(len("broken: [") + 1):
        page.keyboard.press("Backspace")
    page.wait_for_selector("[data-testid='yaml-error']", state="detached")
    text = page.evaluate(
        "() => document.querySelector('.wfb-yaml .wfb-code').editorView.state.doc.toString()"
    )
    assert "volume_size_gb: 20" in text  # the YAML editor draws only the lines on screen
    # Change the volume in YAML: select the number after the key and retype it.
    page.evaluate(
        """() => {
        const view = document.querySelector('.wfb-yaml .wfb-code').editorView;
        const doc = view.state.doc.toString();
        const at = doc.indexOf('volume_size_gb: 20') + 'volume_size_gb: '.length;
        view.dispatch({selection: {anchor: at, head: at + 2}});
        view.focus();
    }"""
    )
    page.keyboard.type("64")
    page.click("[data-testid='tab-canvas']")
    page.click(".react-flow__node[data-id='build']")
    assert page.input_value("[data-testid='field-build.volume_size_gb']") == "64"
    page.click("[data-testid='save']")
    assert "+  volume_size_gb: 64" in page.inner_text("[data-testid='diff']")
    page.click("[data-testid='confirm-save']")
    page.wait_for_selector("text=Saved (version 2)")
    assert Workflow.objects.get(pk=workflow.pk).volume_size_gb == 64


def test_viewer_finds_nothing_editable_and_axe_is_clean(
    workflow, users, live_server, logged_in_page
):
    page = logged_in_page(users["carol"])
    open_builder(page, live_server, workflow)
    assert "Read-only" in page.inner_text("[data-testid='read-only']")
    assert page.locator("[data-testid='save']").count() == 0
    assert page.locator(".wfb-insert").count() == 0
    page.click(".react-flow__node[data-id='build']")
    enabled = page.eval_on_selector_all(
        ".wfb-root input:not([disabled]), .wfb-root select:not([disabled]), "
        ".wfb-root .wfb-palette button:not([disabled]), .wfb-root [contenteditable='true']",
        "els => els.map(e => e.outerHTML.slice(0, 80))",
    )
    assert enabled == []
    assert page.locator("[data-testid='delete-node']").count() == 0
    assert AXE.exists(), "run `npm ci` in frontend/ (scripts/check-frontend does)"
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate("async () => (await axe.run(document.querySelector('main'))).violations")
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], json.dumps(serious, indent=1)


def test_approver_fields_need_add_approver(workflow, users, live_server, logged_in_page):
    page = logged_in_page(users["bob"])  # Developer: change workflow, not add approver
    open_builder(page, live_server, workflow)
    page.click(".react-flow__node[data-id='gate:2']")
    assert page.is_disabled("[data-testid='approver-dave']")
    assert page.is_disabled("[data-testid='field-deploy.environments[2].required_approvals']")
    assert page.is_enabled("[data-testid='field-deploy.environments[2].mode']")


def test_first_paint_loads_no_editor_and_no_document_request(
    workflow, users, live_server, logged_in_page
):
    """The page embeds the document and draws with builder.js, builder.css and the code it shares
    with the run page (builder-layout.js: React, React Flow, the layout) only; CodeMirror, the
    YAML parser, diff and croner load later (bench/builder_load.py measures the gain)."""
    page = logged_in_page(users["alice"])
    fetched = []
    page.on("request", lambda request: fetched.append(request.url.split("/", 3)[3]))
    open_builder(page, live_server, workflow)
    before_ready = page.evaluate(
        """() => performance.getEntriesByType('resource')
          .filter((r) => r.startTime < window.__builderReadyAt).map((r) => r.name)"""
    )
    builder_files = sorted(u.rsplit("/", 1)[1] for u in before_ready if "/static/builder/" in u)
    assert builder_files == ["builder-layout.js", "builder.css", "builder.js"]
    assert not [u for u in before_ready if "/api/" in u]
    # Then the editors arrive when needed: a script opens in CodeMirror with its text.
    page.click(".react-flow__node[data-id='pre_build']")
    page.wait_for_selector("[data-testid='script-editor-pre_build']")
    assert any("builder-CodeEditor" in u for u in fetched)
