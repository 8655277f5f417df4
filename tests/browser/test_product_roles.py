"""The product in the browser, one test per role, as a person would use it: sign in on the
product's page, set up a project, run, approve, look without changing. axe-core checks each
page for serious or critical accessibility violations."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from executions.models import Execution
from executions.services import do_change_status, do_create_execution
from executions.status import ExecutionStatus as S
from tests.realparts import sample_app_files, unique_name
from workflows.models import CIVariable, Project, RegistryConnection, Service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"


def sign_in(browser, base_url: str, username: str, password: str = "password", width=1280):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("[data-testid='sign-in']")
    page.wait_for_url(f"{base_url}/")
    return page


def assert_accessible(page) -> None:
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact))"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    assert violations == [], f"{page.url}: {violations}"


def test_admin_sets_up_a_project_in_the_browser(users, asgi_server, browser, git_server):
    repo = unique_name("web")
    git_server.create_repo(repo, sample_app_files())
    User.objects.create_user("devon", "devon@example.org", "password")
    User.objects.create_user("april", "april@example.org", "password")
    page = sign_in(browser, asgi_server, "alice")
    assert_accessible(page)

    page.click("[data-testid='project-new']")
    page.fill("#id_name", "shop")
    page.click("[data-testid='project-create']")
    page.wait_for_selector("h1:has-text('Project shop')")
    project = Project.objects.get(name="shop")
    for username, role in (("devon", "Developer"), ("april", "Approver")):
        page.fill("#members #id_username", username)
        page.select_option("#members #id_role", role)
        page.click("[data-testid='member-add']")
        page.wait_for_selector(f"[data-testid='members'] td:text-is('{username}')")
    assert User.objects.get(username="devon").groups.filter(name="Developer").exists()
    for name in ("dev", "staging", "prod"):
        page.fill("#environments #id_name", name)
        page.click("[data-testid='environment-add']")
        page.wait_for_selector(f"[data-environment='{name}']")
    assert [e.name for e in project.environments.order_by("order")] == ["dev", "staging", "prod"]

    page.fill("#registries #id_name", "local")
    page.fill("#registries #id_url", "127.0.0.1:5000")
    page.check("#registries #id_insecure")
    page.click("[data-testid='registry-test']")
    page.wait_for_selector("#id_password_probe [data-testid='probe-ok']", timeout=30000)
    page.click("[data-testid='registry-add']")
    page.wait_for_selector("[data-testid='registries'] li:has-text('local')")
    assert RegistryConnection.objects.filter(project=project, name="local").exists()
    assert_accessible(page)

    page.click("[data-testid='service-new']")
    page.fill("#id_name", "web")
    page.fill("#id_repo_url", git_server.repo_url(repo))
    page.fill("#id_git_username", git_server.user)
    page.fill("#id_git_token", git_server.password)
    page.click("[data-testid='service-test']")
    ok = page.wait_for_selector("#id_repo_url_probe [data-testid='probe-ok']", timeout=30000)
    assert "main" in ok.inner_text()
    assert_accessible(page)
    page.click("[data-testid='service-create']")
    workflow = None
    page.wait_for_url("**/workflows/*/")
    workflow = Service.objects.get(project=project, name="web").workflows.get(is_default=True)
    assert page.url.endswith(f"/workflows/{workflow.pk}/")

    page.click("text=CI variables")
    page.fill("#id_key", "DB_PASSWORD")
    page.fill("#id_value", "s3cret-value-42")
    page.check("#id_secret")
    page.select_option("#id_scope", "runtime")
    page.click("[data-testid='variable-save']")
    page.wait_for_selector("[data-variable='DB_PASSWORD']")
    assert "s3cret-value-42" not in page.content()
    assert CIVariable.objects.get(workflow=workflow, key="DB_PASSWORD").secret_value == (
        "s3cret-value-42"
    )
    assert_accessible(page)


def test_wrong_git_token_shows_the_git_error_next_to_the_field(
    users, project, asgi_server, browser, git_server
):
    repo = unique_name("web")
    git_server.create_repo(repo, sample_app_files())
    page = sign_in(browser, asgi_server, "bob")
    page.goto(f"{asgi_server}/projects/{project.pk}/services/new/")
    page.fill("#id_name", "web2")
    page.fill("#id_repo_url", git_server.repo_url(repo))
    page.fill("#id_git_username", git_server.user)
    page.fill("#id_git_token", "not-the-token")
    page.click("[data-testid='service-test']")
    error = page.wait_for_selector("#id_repo_url_probe [data-testid='probe-error']", timeout=30000)
    assert "Authentication failed" in error.inner_text()
    assert "not-the-token" not in error.inner_text()
    assert_accessible(page)


def test_developer_presses_run_and_lands_on_the_live_run(users, workflow, asgi_server, browser):
    page = sign_in(browser, asgi_server, "bob", width=390)
    page.click(f"[data-testid='run-{workflow.pk}']")
    dialog = page.wait_for_selector("dialog[open][data-testid='run-dialog']")
    assert_accessible(page)
    page.fill("#id_commit", "not-a-sha")
    page.click("[data-testid='run-submit']")
    error = page.wait_for_selector("[data-testid='error-commit']")
    assert error.inner_text() == '"not-a-sha" is not a commit id: 7 to 64 hexadecimal digits'
    assert dialog.is_visible() and not Execution.objects.exists()
    page.fill("#id_commit", "")
    page.fill("#id_ref", "main")
    page.click("[data-testid='run-submit']")
    page.wait_for_url("**/executions/*/")
    execution = Execution.objects.get()
    assert page.url.endswith(f"/executions/{execution.pk}/")
    assert execution.triggered_by == users["bob"] and execution.ref == "main"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_approver_signs_in_and_approves(users, workflow, asgi_server, browser):
    from approvals.models import ApprovalRequest
    from executions.engine import Engine
    from executions.models import StageRun

    execution = do_create_execution(
        workflow, ref="main", trigger="manual", triggered_by=users["bob"]
    )
    do_change_status(execution, S.RUNNING)
    for stage in execution.stages.exclude(name="Deploy prod"):
        StageRun.objects.filter(pk=stage.pk).update(status="succeeded")
    Engine(Execution.objects.get(pk=execution.pk)).gate(execution.stages.get(name="Deploy prod"))

    page = sign_in(browser, asgi_server, "dave")
    page.click("text=Waiting for me")
    assert_accessible(page)
    page.click(f"text={execution}")
    page.wait_for_selector("[data-testid='approval-card']", timeout=10000)
    page.fill("#approval-comment", "ship it")
    page.click("[data-testid='approve']")
    page.wait_for_selector(
        "[data-testid='approval-decisions'] >> text=dave approved", timeout=10000
    )
    assert ApprovalRequest.objects.get(execution=execution).status == "approved"
    page.click("[data-testid='sign-out']")
    page.wait_for_url("**/accounts/login/")


def test_viewer_sees_everything_and_changes_nothing(users, workflow, asgi_server, browser):
    project = workflow.service.project
    page = sign_in(browser, asgi_server, "carol")
    assert page.locator(f"[data-testid='run-{workflow.pk}']").count() == 0
    assert page.locator("[data-testid='project-new']").count() == 0
    page.click(f"[data-testid='projects'] >> text={project.name}")
    page.wait_for_selector("[data-testid='members']")
    assert page.locator("form [data-testid='member-add']").count() == 0
    assert page.locator("[data-testid='environment-add']").count() == 0
    assert page.locator("[data-testid='service-new']").count() == 0
    assert_accessible(page)
    page.goto(f"{asgi_server}/workflows/{workflow.pk}/variables/")
    assert page.locator("[data-testid='variable-save']").count() == 0
    assert "s3cr3t-npm-token" not in page.content()
    page.goto(f"{asgi_server}/workflows/{workflow.pk}/run/")
    assert "Not allowed" in page.content()
    assert not Execution.objects.exists()
