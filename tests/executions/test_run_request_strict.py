"""`POST /api/workflows/<id>/run/` refuses what it does not understand instead of running the
default branch: unknown keys (a typo such as `brnach`) and bodies that are not objects."""

from __future__ import annotations

import pytest

from executions.models import Execution
from tests.base import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"brnach": "feature/x"}, "brnach"),
        ({"branch": "main", "sha": "abc1234"}, "sha"),
        ({"inputs": {"a": 1}}, "inputs"),
    ],
)
def test_an_unknown_key_is_a_400_on_that_key(workflow, users, body, field):
    response = client_for(users["alice"]).post(
        f"/api/workflows/{workflow.pk}/run/", body, format="json"
    )
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert error["field"] == field and error["message"].startswith("unknown field")
    assert not Execution.objects.exists()


@pytest.mark.parametrize("body", ["[1, 2]", '"main"', "42", "null"])
def test_a_body_that_is_not_an_object_is_a_400(workflow, users, body):
    response = client_for(users["alice"]).post(
        f"/api/workflows/{workflow.pk}/run/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    # DRF answers a JSON null itself ("No data provided").
    assert body == "null" or "JSON object" in response.json()["detail"]
    assert not Execution.objects.exists()


def test_an_empty_body_still_runs_the_default_branch(workflow, users):
    client = client_for(users["alice"])
    assert client.post(f"/api/workflows/{workflow.pk}/run/").status_code == 201
    response = client.post(f"/api/workflows/{workflow.pk}/run/", {}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["branch"] == workflow.service.default_branch
