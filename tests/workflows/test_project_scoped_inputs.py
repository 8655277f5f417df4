"""Bad input at the project-scoped endpoints (services, environments, registries): a 400 with
the field, never a 500, and nothing learnt about projects the user cannot see."""

from __future__ import annotations

import pytest

from tests.base import client_for
from workflows.models import Project, Service

pytestmark = pytest.mark.django_db

BODIES = {
    "/api/services/": {"name": "api", "repo_url": "https://git.example.org/api.git"},
    "/api/environments/": {"name": "qa"},
    "/api/registries/": {"name": "hub2", "provider": "generic", "url": "127.0.0.1:5000"},
}


@pytest.mark.parametrize("url", list(BODIES))
@pytest.mark.parametrize("project_value", ["two", "", None, [1], {"id": 1}])
def test_a_project_of_the_wrong_type_is_a_400_on_project(project, users, url, project_value):
    response = client_for(users["alice"]).post(
        url, {**BODIES[url], "project": project_value}, format="json"
    )
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["project"]


@pytest.mark.parametrize("url", list(BODIES))
def test_a_duplicate_name_is_reported_on_name(project, environments, registry, users, url):
    client = client_for(users["alice"])
    body = {**BODIES[url], "project": project.pk}
    body["name"] = {"/api/services/": "web", "/api/environments/": "dev"}.get(url, "local")
    if url == "/api/services/":
        Service.objects.create(project=project, name="web", repo_url="https://git.example.org/w")
    response = client.post(url, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {"field": "name", "message": f'"{body["name"]}" already exists in this project'}
    ]


def test_names_in_a_project_the_user_cannot_see_are_not_probed(project, users):
    hidden = Project.objects.create(name="hidden")
    Service.objects.create(project=hidden, name="secret-svc", repo_url="https://git.example.org/s")
    response = client_for(users["alice"]).post(
        "/api/services/",
        {"project": hidden.pk, "name": "secret-svc", "repo_url": "https://git.example.org/x"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["project"]
    assert b"already exists" not in response.content


@pytest.mark.parametrize("branch", ["a..b", "-main", "feature branch", "main.lock", "x" * 3000])
def test_a_default_branch_that_git_refuses_is_a_400_on_default_branch(project, users, branch):
    client = client_for(users["alice"])
    response = client.post(
        "/api/services/",
        {**BODIES["/api/services/"], "project": project.pk, "default_branch": branch},
        format="json",
    )
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert (
        error["field"] == "default_branch" and "not a valid branch or tag name" in error["message"]
    )
    assert not Service.objects.filter(project=project, name="api").exists()


def test_a_valid_default_branch_is_kept_whole(project, users):
    response = client_for(users["alice"]).post(
        "/api/services/",
        {**BODIES["/api/services/"], "project": project.pk, "default_branch": "release/2.x"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["default_branch"] == "release/2.x"
