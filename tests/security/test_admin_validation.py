"""The admin refuses what the API refuses, with the same field paths and messages: workflows
are saved through the API's document validation and service functions (which audit every
change of approvers), services, environments and registries through the API's serializers."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.utils.html import escape

from approvals.models import ApprovalEvent, EventKind
from tests import base
from tests.base import client_for
from tests.security.admin_forms import edit, form_data
from tests.security.conftest import login
from workflows.document import workflow_document
from workflows.services import editable_part

pytestmark = pytest.mark.django_db

WORKFLOW_URL = "/admin/workflows/workflow/{}/change/"


def cron_workflow(service):
    doc = base.app_cd_document(name="nightly", pipeline_type="cron_cd")
    doc["deploy"] = {
        "cron_schedule": "*/5 * * * *",
        "environments": [{"environment": "dev"}],
    }
    return base.save_document(service, doc)


# (case, the workflow to start from, edits as (document path, value, model-form value))
CASES: list[tuple[str, str, list[tuple[str, Any, Any]]]] = [
    ("cron without a schedule", "cron", [("deploy.cron_schedule", None, None)]),
    ("CI with deploy environments", "app", [("pipeline_type", "ci", None)]),
    (
        "5 required approvals with 1 approver",
        "app",
        [("deploy.environments[2].required_approvals", 5, None)],
    ),
    ("Dockerfile outside the checkout", "app", [("build.dockerfile", "../../etc/passwd", None)]),
    ("another project's registry", "app", [("push.registry", "theirs", "registry:theirs")]),
    (
        "another project's environment",
        "app",
        [("deploy.environments[0].environment", "their-env", "environment:their-env")],
    ),
    ("Workers CD with a port", "app", [("pipeline_type", "worker_cd", None)]),
    (
        "an approver who is not a member",
        "app",
        [("deploy.environments[2].approvers.users", ["erin"], "user:erin")],
    ),
]


def model_value(spec: Any, other, users) -> Any:
    """A primary key where a model form takes one instead of the document's name."""
    if not isinstance(spec, str) or ":" not in spec:
        return spec
    kind, name = spec.split(":")
    if kind == "registry":
        return other.registries.get(name=name).pk
    if kind == "environment":
        return other.environments.get(name=name).pk
    return [str(users[name].pk)]


@pytest.mark.parametrize("case,start,edits", CASES, ids=[c[0] for c in CASES])
def test_admin_refuses_what_the_api_refuses(case, start, edits, workflow, other, users, root):
    target = cron_workflow(workflow.service) if start == "cron" else workflow
    before = editable_part(workflow_document(target))
    admin = login(root)
    data = form_data(admin, WORKFLOW_URL.format(target.pk))
    for path, value, spec in edits:
        edit(data, path, value, model_value(spec, other, users))

    page = admin.post(WORKFLOW_URL.format(target.pk), data)

    assert page.status_code == 200, f"{case}: the admin saved it"
    assert editable_part(workflow_document(target)) == before
    # The API refuses the same document, and the admin shows the API's words.
    api = client_for(root).put(
        f"/api/workflows/{target.pk}/", yaml.safe_load(data["document"]), format="json"
    )
    assert api.status_code == 400
    for error in api.json()["errors"]:
        assert escape(f"{error['field']}: {error['message']}") in page.content.decode(), error


def test_admin_change_of_approvers_is_audited(workflow, users, root):
    admin = login(root)
    data = form_data(admin, WORKFLOW_URL.format(workflow.pk))
    edit(data, "deploy.environments[2].approvers.users", ["alice"], [str(users["alice"].pk)])
    assert admin.post(WORKFLOW_URL.format(workflow.pk), data).status_code == 302
    event = ApprovalEvent.objects.get(kind=EventKind.APPROVERS_CHANGED)
    assert event.user == root
    assert (event.detail["before"]["users"], event.detail["after"]["users"]) == (
        ["dave"],
        ["alice"],
    )


def test_admin_saves_a_valid_change_through_the_document(workflow, root):
    admin = login(root)
    data = form_data(admin, WORKFLOW_URL.format(workflow.pk))
    edit(data, "stage_timeout_minutes", 61)
    assert admin.post(WORKFLOW_URL.format(workflow.pk), data).status_code == 302
    workflow.refresh_from_db()
    assert workflow.stage_timeout_minutes == 61
    # The secret variable kept its stored value (the document never shows it).
    assert workflow.variables.get(key="NPM_TOKEN").secret_value == "s3cr3t-npm-token"


def test_admin_without_add_approver_cannot_change_approvers(workflow, users):
    bob = login(users["bob"])  # a Developer: change workflow, but not add approver
    data = form_data(bob, WORKFLOW_URL.format(workflow.pk))
    edit(data, "deploy.environments[2].approvers.users", ["alice"], [str(users["alice"].pk)])
    page = bob.post(WORKFLOW_URL.format(workflow.pk), data)
    assert page.status_code == 200
    assert "Add approver to workflows" in page.content.decode()
    assert list(workflow.deploy_steps.get(order=2).approver_users.all()) == [users["dave"]]


SERVICE_URL = "/admin/workflows/service/{}/change/"
ENVIRONMENT_URL = "/admin/workflows/environment/{}/change/"
REGISTRY_URL = "/admin/workflows/registryconnection/{}/change/"


def test_service_environment_and_registry_forms_use_the_api_rules(
    workflow, environments, registry, other, root
):
    admin = login(root)
    service = workflow.service
    data = form_data(admin, SERVICE_URL.format(service.pk))
    data["image_registry"] = other.registries.get().pk
    page = admin.post(SERVICE_URL.format(service.pk), data)
    assert page.status_code == 200
    assert "the registry belongs to another project" in page.content.decode()
    service.refresh_from_db()
    assert service.image_registry is None

    dev = environments[0]
    data = form_data(admin, ENVIRONMENT_URL.format(dev.pk))
    data["target"] = "kubernetes"
    page = admin.post(ENVIRONMENT_URL.format(dev.pk), data)
    assert page.status_code == 200
    assert "a Kubernetes environment needs a kubeconfig or in_cluster" in page.content.decode()
    dev.refresh_from_db()
    assert dev.target == "local"

    data = form_data(admin, REGISTRY_URL.format(registry.pk))
    data["provider"] = "ecr"
    page = admin.post(REGISTRY_URL.format(registry.pk), data)
    assert page.status_code == 200
    assert "ECR needs the AWS region" in page.content.decode()
    registry.refresh_from_db()
    assert registry.provider == "generic"


def test_service_made_in_the_admin_gets_its_default_workflow(project, root):
    admin = login(root)
    response = admin.post(
        "/admin/workflows/service/add/",
        {
            "project": project.pk,
            "name": "api",
            "repo_url": "https://git.example.org/demo/api.git",
            "default_branch": "main",
        },
    )
    assert response.status_code == 302
    assert project.services.get(name="api").workflows.get().is_default
