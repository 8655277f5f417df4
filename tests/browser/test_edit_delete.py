"""Editing and deleting what a project's workflows use, in Chromium as an Admin would: edit a
service (its token stays stored and unseen), a delete refused because a workflow still uses the
registry (shown in the page, with a link), then a delete that goes through. No alert() or
confirm() pop-up; axe-core finds no serious or critical violation on the new pages."""

from __future__ import annotations

import pytest

from tests import base
from tests.browser.test_product_roles import assert_accessible, sign_in
from workflows.models import RegistryConnection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]
TOKEN = "tok-5b1e0d-never-in-html"
PASSWORD = "pw-77c2f9-never-in-html"


def test_admin_edits_and_deletes_in_the_browser(users, project, workflow, asgi_server, browser):
    service = workflow.service
    service.git_token = TOKEN
    service.save()
    base.make_registry(project, name="spare", username="ci", password=PASSWORD)
    page = sign_in(browser, asgi_server, "alice")
    popups: list[str] = []
    page.on("dialog", lambda dialog: (popups.append(dialog.message), dialog.dismiss()))
    settings_url = f"{asgi_server}/projects/{project.pk}/"

    # Edit the service: the token field is empty and the stored token survives the save.
    page.goto(settings_url)
    page.click(f"[data-testid='service-edit-{service.name}']")
    page.wait_for_selector(f"h1:has-text('Edit service {service.name}')")
    assert page.input_value("#id_git_token") == ""
    assert TOKEN not in page.content()
    assert_accessible(page)
    page.fill("#id_default_branch", "trunk")
    page.click("[data-testid='service-save']")
    page.wait_for_url(f"{settings_url}#services")
    service.refresh_from_db()
    assert (service.default_branch, service.git_token) == ("trunk", TOKEN)

    # The registry the workflow pushes to: the delete is refused in the page, naming it.
    page.click("[data-testid='registry-delete-local']")
    page.wait_for_selector("h1:has-text('Delete registry connection local?')")
    assert_accessible(page)
    page.click("[data-testid='delete-confirm']")
    blocked = page.wait_for_selector("[data-testid='delete-blocked']")
    assert "Can't delete" in blocked.inner_text()
    assert blocked.query_selector(f"a[href='/workflows/{workflow.pk}/']") is not None
    assert RegistryConnection.objects.filter(project=project, name="local").exists()
    assert_accessible(page)

    # An unused registry: edit it (the password stays unseen), then delete it.
    page.goto(settings_url)
    page.click("[data-testid='registry-edit-spare']")
    page.wait_for_selector("h1:has-text('Edit registry connection spare')")
    assert page.input_value("#id_password") == "" and PASSWORD not in page.content()
    assert_accessible(page)
    page.fill("#id_url", "127.0.0.1:5001")
    page.click("[data-testid='registry-save']")
    page.wait_for_url(f"{settings_url}#registries")
    spare = RegistryConnection.objects.get(project=project, name="spare")
    assert (spare.url, spare.password) == ("127.0.0.1:5001", PASSWORD)
    page.click("[data-testid='registry-delete-spare']")
    page.click("[data-testid='delete-confirm']")
    page.wait_for_url(settings_url)
    assert page.query_selector("[data-testid='registry-delete-spare']") is None
    assert not RegistryConnection.objects.filter(pk=spare.pk).exists()

    # The other new pages, also at 390 px wide (a phone): no sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 800})
    dev = project.environments.get(name="dev")
    for testid, heading in (
        ("environment-edit-dev", "Edit environment dev"),
        ("environment-delete-dev", "Delete environment dev?"),
        ("project-edit", f"Edit project {project.name}"),
        (f"service-delete-{service.name}", f"Delete service {service.name}?"),
    ):
        page.goto(settings_url)
        page.click(f"[data-testid='{testid}']")
        page.wait_for_selector(f"h1:has-text('{heading}')")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, heading
        assert_accessible(page)
    assert project.environments.filter(pk=dev.pk).exists()
    assert popups == []
