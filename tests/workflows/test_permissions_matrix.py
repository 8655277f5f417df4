"""Each of the six permissions against each endpoint: allowed → works, missing → 403,
anonymous → 401/403 (API) or login redirect (pages), non-member → 404."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from executions.models import Execution
from tests.base import app_cd_document, client_for, make_users

pytestmark = pytest.mark.django_db


def grant(user, *codenames):
    user.groups.clear()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="workflows", codename__in=codenames)
    )
    # Django caches permissions on the user object.
    for attr in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(attr, None)
    return user


def cases(workflow, service, environments, registry):
    doc = app_cd_document(name="other")
    doc["deploy"]["environments"].pop()  # designating approvers needs a 7th permission
    execution = Execution.objects.create(workflow=workflow, number=99, status="running")
    return [
        # (method, url, body, permission needed, success code)
        ("get", "/api/projects/", None, "view_workflow", 200),
        ("get", f"/api/services/{service.pk}/", None, "view_workflow", 200),
        (
            "post",
            "/api/services/",
            {
                "project": service.project_id,
                "name": "api",
                "repo_url": "https://git.example.org/api.git",
            },
            "add_workflow",
            201,
        ),
        (
            "patch",
            f"/api/services/{service.pk}/",
            {"default_branch": "trunk"},
            "change_workflow",
            200,
        ),
        ("get", "/api/environments/", None, "view_workflow", 200),
        (
            "post",
            "/api/environments/",
            {"project": service.project_id, "name": "qa"},
            "change_workflow",
            201,
        ),
        ("get", "/api/registries/", None, "view_workflow", 200),
        ("get", f"/api/workflows/{workflow.pk}/", None, "view_workflow", 200),
        ("get", f"/api/workflows/{workflow.pk}/export/", None, "view_workflow", 200),
        ("post", "/api/workflows/", {**doc, "service": service.pk}, "add_workflow", 201),
        (
            "patch",
            f"/api/workflows/{workflow.pk}/",
            {"stage_timeout_minutes": 45},
            "change_workflow",
            200,
        ),
        ("post", f"/api/workflows/{workflow.pk}/run/", {"ref": "main"}, "change_workflow", 201),
        ("get", "/api/executions/", None, "view_workflow", 200),
        ("get", f"/api/executions/{execution.pk}/", None, "view_workflow", 200),
        ("get", f"/api/executions/{execution.pk}/logs/", None, "view_workflow", 200),
        ("post", f"/api/executions/{execution.pk}/terminate/", None, "change_workflow", 202),
        ("delete", f"/api/workflows/{workflow.pk}/", None, "delete_workflow", 204),
        ("delete", f"/api/services/{service.pk}/", None, "delete_workflow", 204),
    ]


SPEC_PERMS = [
    "view_workflow",
    "add_workflow",
    "change_workflow",
    "delete_workflow",
    "add_approver",
    "approve_pipeline",
]


def test_matrix(project, workflow, service, environments, registry, users):
    frank = users["frank"]  # a member with no role
    for method, url, body, needed, ok in cases(workflow, service, environments, registry):
        for perm in SPEC_PERMS:
            # Writes need to see the object too, so every grant includes view.
            held = {perm, "view_workflow"}
            grant(frank, *held)
            response = getattr(client_for(frank), method)(url, body, format="json")
            if needed in held:
                assert response.status_code == ok, (method, url, perm, response.content)
                if method != "get":
                    break  # the object changed; the remaining grants are covered by refusals
            else:
                assert response.status_code == 403, (method, url, perm, response.content)
                assert "permission" in response.json()["detail"]
        anonymous = getattr(client_for(None), method)(url, body, format="json")
        assert anonymous.status_code in (401, 403), (method, url)


def test_non_member_sees_nothing(workflow, users):
    erin = users["erin"]  # Admin role, not a member
    client = client_for(erin)
    assert client.get("/api/projects/").json()["results"] == []
    assert client.get(f"/api/workflows/{workflow.pk}/").status_code == 404
    assert client.post(f"/api/workflows/{workflow.pk}/run/", {}, format="json").status_code == 404


def test_changing_approvers_needs_add_approver(workflow, users):
    bob = users["bob"]  # Developer: change_workflow but not add_approver
    doc = client_for(bob).get(f"/api/workflows/{workflow.pk}/").json()
    doc["stage_timeout_minutes"] = 40
    assert (
        client_for(bob).put(f"/api/workflows/{workflow.pk}/", doc, format="json").status_code == 200
    )
    doc["deploy"]["environments"][2]["approvers"]["users"] = ["dave", "alice"]
    response = client_for(bob).put(f"/api/workflows/{workflow.pk}/", doc, format="json")
    assert response.status_code == 403
    assert "Add approver to workflows" in response.json()["detail"]
    assert (
        client_for(users["alice"])
        .put(f"/api/workflows/{workflow.pk}/", doc, format="json")
        .status_code
        == 200
    )


def test_pages_need_login_and_view(workflow, users):
    client = Client()
    assert client.get("/").status_code == 302
    assert client.get(f"/workflows/{workflow.pk}/").status_code == 302
    client.force_login(users["frank"])
    assert client.get("/").status_code == 403
    client.force_login(users["carol"])
    page = client.get(f"/workflows/{workflow.pk}/")
    assert page.status_code == 200
    assert b'id="workflow-builder"' in page.content


def test_roles_hold_the_spec_permissions(db):
    from django.contrib.auth.models import Group

    held = {g.name: {p.codename for p in g.permissions.all()} for g in Group.objects.all()}
    assert held["Viewer"] == {"view_workflow"}
    assert held["Approver"] == {"view_workflow", "approve_pipeline"}
    assert set(SPEC_PERMS) <= held["Admin"]
    labels = {p.codename: p.name for p in Permission.objects.filter(codename__in=SPEC_PERMS)}
    assert labels["add_approver"] == "Can add approver to workflows"
    assert labels["approve_pipeline"] == "Can approve pipeline"
    make_users()  # roles are usable as-is
