"""The builder end to end on real parts: a pipeline built in the browser from a new service's
default workflow, saved, run through the API with the page's session, and played by the worker's
task function on the local engine (git over HTTP, podman build, push, deploy to dev) until it
waits at the manual gate before staging: Deployment Pending on the run page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from executions.engine import run_execution
from executions.models import Execution
from executions.status import ExecutionStatus as S
from tests import base
from tests.browser.test_workflow_builder import drop, node_ids, open_builder
from tests.deploy import free_ports
from tests.deploy.conftest import local  # noqa: F401 (fixture: the local engine, cleaned up)
from tests.realparts import sample_app_files, unique_name
from workflows.document import workflow_document

pytest_plugins = ["tests.realparts"]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.engine]


@pytest.fixture
def project(users):
    """A project of its own: the local engine's pods carry its name (`local` removes them)."""
    return base.make_project(users, name=unique_name("builder"))


def test_built_in_the_builder_saved_run_reaches_deployment_pending(
    local,  # noqa: F811
    project,
    users,
    git_server,
    live_server,
    logged_in_page,
):
    base.make_registry(project)
    base.make_environments(project, names=("dev", "staging"))
    Group.objects.get(name="Approver").user_set.add(users["dave"])
    name = unique_name("shop")
    git_server.create_repo(name, sample_app_files(run_steps=1, marker=name))
    service = base.make_service(
        project,
        name=name,
        repo_url=git_server.repo_url(name),
        git_username=git_server.user,
        git_token=git_server.password,
    )
    workflow = service.workflows.get(is_default=True)
    port = free_ports(2, 21300)

    page = logged_in_page(users["alice"])
    open_builder(page, live_server, workflow)
    page.click("[data-testid='workflow-settings']")
    page.fill("[data-testid='field-name']", "deliver")
    page.select_option("[data-testid='field-pipeline_type']", "app_cd")
    page.fill("[data-testid='field-deploy.port']", str(port))
    page.fill("[data-testid='field-deploy.health_check_path']", "/index.html")
    drop(page, "environment", "push", "end")
    drop(page, "environment", "deploy:0", "end")
    drop(page, "gate:manual", "deploy:0", "deploy:1")
    assert node_ids(page)[-4:] == ["deploy:0", "gate:1", "deploy:1", "end"]
    page.click("[data-testid='save']")
    page.click("[data-testid='confirm-save']")
    page.wait_for_selector("text=Saved (version 2)", timeout=10000)
    doc = workflow_document(workflow)
    assert [(e["environment"], e["mode"]) for e in doc["deploy"]["environments"]] == [
        ("dev", "automatic"),
        ("staging", "manual"),
    ]

    # Run, as the page's user: POST /api/workflows/<id>/run/ with the session and CSRF token.
    answer = page.evaluate(
        """async (url) => {
            const csrf = document.getElementById('workflow-builder').dataset.csrf;
            const r = await fetch(url, {
                method: 'POST', credentials: 'same-origin', body: '{}',
                headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf},
            });
            return {status: r.status, body: await r.json()};
        }""",
        f"/api/workflows/{workflow.pk}/run/",
    )
    assert answer["status"] == 201, answer
    execution = Execution.objects.get(pk=answer["body"]["id"])
    assert execution.triggered_by == users["alice"]

    # The worker's task (what django-q2 would call): Source, Build, Push, Deploy dev, then wait.
    assert run_execution(execution.pk) == S.DEPLOYMENT_PENDING
    execution.refresh_from_db()
    assert execution.status == S.DEPLOYMENT_PENDING, execution.status_reason
    assert list(execution.stages.values_list("name", "status"))[:4] == [
        ("Source", "succeeded"),
        ("Build", "succeeded"),
        ("Push", "succeeded"),
        ("Deploy dev", "succeeded"),
    ]

    page.goto(f"{live_server.url}/executions/{execution.pk}/")
    assert page.inner_text("[data-testid='run-status']") == "Deployment Pending"
