"""The builder's panel edits the document's newer fields as a user would: the cron schedule's
IANA time zone (with its next runs shown in that zone), the multi-arch platform, and the
builder (local engine or a Kubernetes environment's cluster). What is saved is what the API
returns; what the server refuses shows its message under the field, on the right node."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_workflow_builder import open_builder
from workflows.models import SCRIPT_HOOKS, Environment, Workflow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

ZONE_FIELD = "[data-testid='field-deploy.cron_time_zone']"


def save(page):
    page.click("[data-testid='save']")
    page.click("[data-testid='confirm-save']")


def field_error(page, testid):
    """The messages shown under the control with `testid`."""
    return page.inner_text(f".wfb-field:has([data-testid='{testid}']) [data-testid='field-error']")


def api_document(page, live_server, workflow):
    response = page.request.get(f"{live_server.url}/api/workflows/{workflow.pk}/")
    assert response.status == 200
    return response.json()


def test_time_zone_and_multi_arch_platform_saved_and_returned(
    workflow, users, live_server, logged_in_page
):
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)

    page.click(".react-flow__node[data-id='build']")
    page.select_option("[data-testid='field-build.platform']", "linux/amd64,linux/arm64")
    assert "multi-arch amd64+arm64" in page.inner_text("[data-testid='node-build']")

    page.click("[data-testid='workflow-settings']")
    page.select_option("[data-testid='field-pipeline_type']", "cron_cd")
    page.fill("[data-testid='field-deploy.port']", "")
    page.fill("[data-testid='field-deploy.cron_schedule']", "30 9 * * *")
    page.fill(ZONE_FIELD, "Asia/Kolkata")
    # The preview counts on the zone's wall clock: 09:30 in Kolkata (IST, UTC+5:30).
    page.wait_for_selector("[data-testid='cron-next']:has-text('(Asia/Kolkata)')")
    runs = page.inner_text("[data-testid='cron-next']")
    assert runs.count("09:30 GMT+5:30") == 3, runs

    save(page)
    assert "+  cron_time_zone: Asia/Kolkata" in page.inner_text("[data-testid='diff']")
    page.wait_for_selector("text=Saved (version 2)", timeout=10000)

    doc = api_document(page, live_server, workflow)
    assert doc["build"]["platform"] == "linux/amd64,linux/arm64"
    assert doc["deploy"]["cron_time_zone"] == "Asia/Kolkata"
    assert doc["deploy"]["cron_schedule"] == "30 9 * * *"
    # The server computes the same runs in the same zone (+05:30, at 09:30).
    assert len(doc["next_runs"]) == 3
    assert all(t.endswith("+05:30") and "T09:30:00" in t for t in doc["next_runs"])


def test_bad_time_zone_shows_the_servers_message_under_the_field(
    workflow, users, live_server, logged_in_page
):
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    page.click("[data-testid='workflow-settings']")
    page.select_option("[data-testid='field-pipeline_type']", "cron_cd")
    page.fill("[data-testid='field-deploy.port']", "")
    page.fill("[data-testid='field-deploy.cron_schedule']", "0 3 * * *")
    page.fill(ZONE_FIELD, "Mars/Olympus")
    # The preview already says so; the server's message is the one that counts.
    page.wait_for_selector("[data-testid='cron-next']:has-text('not a time zone')")
    # Leave the panel: the error must bring the user back to the right one.
    page.click(".react-flow__node[data-id='build']")
    save(page)
    page.wait_for_selector(f"{ZONE_FIELD}[aria-invalid='true']", timeout=10000)
    assert page.inner_text("#wfb-panel-title") == "Workflow settings"
    message = field_error(page, "field-deploy.cron_time_zone")
    assert '"Mars/Olympus" is not an IANA time zone' in message
    assert page.locator("[data-testid='field-error']").count() == 1
    assert page.locator("[data-testid='unshown-errors']").count() == 0  # shown once, not twice
    assert Workflow.objects.get(pk=workflow.pk).cron_time_zone == "UTC"


def test_kubernetes_builder_environment_and_its_errors(
    workflow, users, live_server, logged_in_page, project
):
    Environment.objects.create(
        project=project, name="builds", namespace="builds", target="kubernetes", order=9
    )
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    page.click(".react-flow__node[data-id='build']")
    page.select_option("[data-testid='field-build.builder']", "kubernetes")
    # Only Kubernetes environments are offered as builders.
    offered = page.eval_on_selector_all(
        "[data-testid='field-build.builder_environment'] option", "els => els.map(e => e.value)"
    )
    assert offered == ["", "builds"]

    # None chosen: the server's message lands under the field, on the Build node.
    save(page)
    page.wait_for_selector("[data-testid='node-build'] [data-testid='node-error']", timeout=10000)
    assert page.inner_text("#wfb-panel-title") == "Build"
    assert "name the Kubernetes environment" in field_error(page, "field-build.builder_environment")

    page.select_option("[data-testid='field-build.builder_environment']", "builds")
    assert "on builds" in page.inner_text("[data-testid='node-build']")
    save(page)
    page.wait_for_selector("text=Saved (version 2)", timeout=10000)
    doc = api_document(page, live_server, workflow)
    assert doc["build"]["builder"] == "kubernetes"
    assert doc["build"]["builder_environment"] == "builds"

    # Back to the local engine: the environment goes with it, and the save is accepted.
    page.select_option("[data-testid='field-build.builder']", "local")
    assert page.locator("[data-testid='field-build.builder_environment']").count() == 0
    save(page)
    page.wait_for_selector("text=Saved (version 3)", timeout=10000)
    doc = api_document(page, live_server, workflow)
    assert (doc["build"]["builder"], doc["build"]["builder_environment"]) == ("local", None)


def test_an_error_on_a_field_no_panel_shows_is_listed_on_its_node(
    workflow, users, live_server, logged_in_page
):
    """A typo made in the YAML tab has no control in the panel: the server's message still
    shows, with its path, on the node the path belongs to."""
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    page.click("[data-testid='tab-yaml']")
    page.wait_for_selector("[data-testid='yaml-editor']")
    page.evaluate(
        """() => {
        const view = document.querySelector('.wfb-yaml .wfb-code').editorView;
        const at = view.state.doc.toString().indexOf('  concurrency: queue');
        view.dispatch({changes: {from: at, insert: '  pull_request: true\\n'}});
    }"""
    )
    save(page)
    page.wait_for_selector("[data-testid='node-source'] [data-testid='node-error']", timeout=10000)
    assert page.inner_text("#wfb-panel-title") == "Source"
    assert "source.pull_request: unknown field" in page.inner_text("[data-testid='unshown-errors']")
    # Errors a field shows are not repeated in the list.
    page.click("[data-testid='workflow-settings']")
    assert page.locator("[data-testid='unshown-errors']").count() == 0


def document_fields(serializer, prefix=""):
    """Every leaf path of the workflow document the server accepts, lists as `[0]`."""
    from rest_framework import serializers

    out = []
    for name, field in serializer.fields.items():
        path = f"{prefix}{name}"
        if isinstance(field, serializers.ListSerializer):
            out += document_fields(field.child, f"{path}[0].")
        elif isinstance(field, serializers.Serializer):
            out += document_fields(field, f"{path}.")
        else:
            out.append(path)
    return out


# Shown only in another state of the same document, or not a panel's job.
OTHER_STATE = {
    "source.image": "a pre-built image source",
    "variables[0].secret_ref": "a variable read from a secret manager",
    "layout.positions": "the canvas's automatic layout",
}


def test_the_panels_cover_every_field_of_the_document(
    service, environments, registry, users, live_server, logged_in_page, project
):
    """New document fields must reach the panel: the server's serializer is the list."""
    from tests import base
    from workflows.document import WorkflowDocumentSerializer

    Environment.objects.create(
        project=project, name="builds", namespace="builds", target="kubernetes", order=9
    )
    doc = base.app_cd_document(
        scripts={hook: f"echo {hook}" for hook in SCRIPT_HOOKS},
        build={"builder": "kubernetes", "builder_environment": "builds"},
    )
    workflow = base.save_document(service, doc)
    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    shown = set()
    nodes = page.eval_on_selector_all(
        ".react-flow__node", "els => els.map(e => e.getAttribute('data-id'))"
    )
    for node in [*nodes, "workflow"]:
        if node == "workflow":
            page.click("[data-testid='workflow-settings']")
        else:
            page.click(f".react-flow__node[data-id='{node}']")
        if node in SCRIPT_HOOKS:  # CodeMirror arrives as a chunk on first use
            page.wait_for_selector(f"[data-testid='script-editor-{node}']")
        for testid in page.eval_on_selector_all(
            "[data-testid='panel'] [data-testid^='field-'], "
            "[data-testid='panel'] [data-testid^='script-editor-']",
            "els => els.map(e => e.dataset.testid)",
        ):
            if testid.startswith("script-editor-"):
                shown.add("scripts." + testid.removeprefix("script-editor-"))
            else:
                shown.add(re.sub(r"\[\d+\]", "[0]", testid.removeprefix("field-")))
    fields = document_fields(WorkflowDocumentSerializer(service=service))
    missing = sorted(set(fields) - shown - set(OTHER_STATE))
    assert missing == []
    assert set(OTHER_STATE) <= set(fields)  # the exceptions are still real fields
