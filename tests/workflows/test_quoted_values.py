"""A value quoted back in a 400 is cut short: a huge input is not echoed whole into the
answer (and the page that shows it)."""

from __future__ import annotations

import pytest

from tests.base import client_for

pytestmark = pytest.mark.django_db

HUGE = "n" * 5000


def test_a_huge_project_name_is_not_echoed_whole(users):
    response = client_for(users["alice"]).post("/api/projects/", {"name": HUGE}, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert {e["field"] for e in errors} == {"name"}
    assert len(response.content) < 1000
    assert any(e["message"].startswith('"' + "n" * 64 + '…" is not a valid name') for e in errors)


def test_a_huge_run_branch_is_not_echoed_whole(workflow, users):
    response = client_for(users["alice"]).post(
        f"/api/workflows/{workflow.pk}/run/", {"branch": "b" * 3000}, format="json"
    )
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert error["field"] == "branch" and "longer than 2048 bytes" in error["message"]
    assert len(error["message"]) < 200


def test_a_huge_branch_pattern_is_not_echoed_whole(workflow, users):
    client = client_for(users["alice"])
    doc = client.get(f"/api/workflows/{workflow.pk}/").json()
    doc["source"]["branches"] = [{"pattern": "feature " + "x" * 2000, "match": "exact"}]
    response = client.put(f"/api/workflows/{workflow.pk}/", doc, format="json")
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert error["field"] == "source.branches[0].pattern"
    assert error["message"].endswith('…" is not a valid branch pattern')
    assert len(error["message"]) < 200


def test_a_short_value_is_quoted_whole(users):
    response = client_for(users["alice"]).post("/api/projects/", {"name": "Shop"}, format="json")
    assert response.json()["errors"][0]["message"].startswith('"Shop" is not a valid name')
