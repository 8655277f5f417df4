"""The admin is scoped to the user's projects like the API: changelists, change pages, forms
and choices show nothing of a project the user is not a member of, and only someone who
administers a project changes who its members are."""

from __future__ import annotations

import pytest
from django.contrib import admin

from executions.services import do_create_execution
from tests.base import client_for
from tests.security.admin_forms import edit, form_data
from tests.security.conftest import login
from workflows.models import Environment, Project, Service, Workflow

pytestmark = pytest.mark.django_db

OUR_APPS = {"workflows", "executions", "approvals", "integrations"}
WORKFLOW_URL = "/admin/workflows/workflow/{}/change/"
PROJECT_URL = "/admin/workflows/project/{}/change/"


def our_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in OUR_APPS
    ]


def test_every_admin_of_the_product_is_scoped():
    from atmosly.admin_base import ProjectScopedAdmin

    for model, model_admin in our_admins():
        assert isinstance(model_admin, ProjectScopedAdmin), model
        assert model_admin.project_paths, model


def test_admin_of_no_project_sees_nothing_of_other_projects(workflow, users):
    do_create_execution(workflow, ref="main", trigger="manual")
    erin = login(users["erin"])  # Admin role, member of no project
    for model, _ in our_admins():
        info = model._meta.app_label, model._meta.model_name
        page = erin.get("/admin/{}/{}/".format(*info))
        assert page.status_code in (200, 403), info
        if page.status_code == 200:
            assert page.context["cl"].result_count == 0, info
    assert erin.get(WORKFLOW_URL.format(workflow.pk)).status_code == 302  # "does not exist"


def test_admin_cannot_save_another_projects_workflow(workflow, users, root):
    data = form_data(login(root), WORKFLOW_URL.format(workflow.pk))
    edit(data, "stage_timeout_minutes", 61)
    login(users["erin"]).post(WORKFLOW_URL.format(workflow.pk), data)
    workflow.refresh_from_db()
    assert workflow.stage_timeout_minutes == 60
    # The API answers the same: not found.
    response = client_for(users["erin"]).patch(
        f"/api/workflows/{workflow.pk}/", {"stage_timeout_minutes": 61}, format="json"
    )
    assert response.status_code == 404


def test_admin_cannot_add_itself_to_another_projects_members(project, users, root):
    data = form_data(login(root), PROJECT_URL.format(project.pk))
    data["members"] = [*data["members"], str(users["erin"].pk)]
    login(users["erin"]).post(PROJECT_URL.format(project.pk), data)
    assert not project.members.filter(pk=users["erin"].pk).exists()
    assert client_for(users["erin"]).get("/api/projects/").json()["count"] == 0


def test_membership_is_changed_only_by_who_administers_the_project(project, other, users, root):
    gina = users["alice"].__class__.objects.create_user("gina", "gina@example.org", "pw")
    data = form_data(login(root), PROJECT_URL.format(project.pk))
    data["members"] = [*data["members"], str(gina.pk)]

    # bob is a member, but a Developer: he does not administer the project.
    assert login(users["bob"]).post(PROJECT_URL.format(project.pk), data).status_code == 403
    assert not project.members.filter(pk=gina.pk).exists()

    # alice is a member with the Admin role: she does.
    assert login(users["alice"]).post(PROJECT_URL.format(project.pk), data).status_code == 302
    assert project.members.filter(pk=gina.pk).exists()

    # ... but not of a project she is not a member of.
    theirs = form_data(login(root), PROJECT_URL.format(other.pk))
    theirs["members"] = [*theirs["members"], str(users["alice"].pk)]
    login(users["alice"]).post(PROJECT_URL.format(other.pk), theirs)
    assert not other.members.filter(pk=users["alice"].pk).exists()


def test_a_project_made_in_the_admin_is_administered_by_its_maker(users):
    alice = login(users["alice"])
    response = alice.post("/admin/workflows/project/add/", {"name": "ops", "description": ""})
    assert response.status_code == 302
    assert Project.objects.get(name="ops").members.filter(pk=users["alice"].pk).exists()


def test_forms_offer_and_accept_only_the_users_projects(workflow, other, users):
    erin = login(users["erin"])
    form = erin.get("/admin/workflows/service/add/").context["adminform"].form
    assert list(form.fields["project"].queryset) == [other]
    assert list(form.fields["image_registry"].queryset) == list(other.registries.all())
    form = erin.get("/admin/workflows/workflow/add/").context["adminform"].form
    assert list(form.fields["service"].queryset) == []

    response = erin.post(
        "/admin/workflows/service/add/",
        {"project": workflow.service.project_id, "name": "sneaky", "repo_url": "https://x.org/r"},
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors["project"]
    response = erin.post(
        "/admin/workflows/environment/add/",
        {"project": workflow.service.project_id, "name": "sneaky", "target": "local"},
    )
    assert response.status_code == 200
    assert not Service.objects.filter(name="sneaky").exists()
    assert not Environment.objects.filter(name="sneaky").exists()

    # The admin's autocomplete answers from the same scoped lists.
    found = erin.get(
        "/admin/autocomplete/",
        {"app_label": "workflows", "model_name": "service", "field_name": "project", "term": ""},
    )
    assert [r["text"] for r in found.json()["results"]] == ["other"]


def test_run_history_in_the_admin_is_scoped_and_follows_view_workflows(workflow, users):
    do_create_execution(workflow, ref="main", trigger="manual")
    page = login(users["carol"]).get("/admin/executions/execution/")  # a Viewer, member
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    assert login(users["frank"]).get("/admin/executions/execution/").status_code == 403
    assert Workflow.objects.count() == 2  # nothing was added along the way


def test_runs_changelist_project_filter_offers_only_the_users_projects(workflow, users, root):
    """The runs changelist's project filter lists the projects with a workflow that the user
    sees (read from the workflows, not from every run: issue 16), a project before its first
    run included, and never another project."""
    from tests import base
    from workflows.models import Project

    def project_with_a_workflow(name: str, *members) -> None:
        project = Project.objects.create(name=name)
        project.members.add(users["dave"], *members)  # dave approves in the document
        base.make_environments(project)
        base.make_registry(project)
        base.save_document(base.make_service(project, name=f"{name}-svc"), base.app_cd_document())

    project_with_a_workflow("shared", users["alice"])
    project_with_a_workflow("secret")
    Project.objects.create(name="no-workflow-yet").members.add(users["alice"])

    def offered(client) -> list[str]:
        page = client.get("/admin/executions/execution/")
        assert page.status_code == 200
        # Django shows a related filter only when it offers a choice (two entries or more).
        specs = [s for s in page.context["cl"].filter_specs if s.title == "project"]
        return sorted(name for spec in specs for _, name in spec.lookup_choices)

    mine = workflow.service.project.name
    assert offered(login(users["alice"])) == sorted([mine, "shared"])
    assert offered(login(root)) == sorted([mine, "shared", "secret"])
    assert offered(login(users["erin"])) == []
