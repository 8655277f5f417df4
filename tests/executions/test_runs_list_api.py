"""`GET /api/executions/` with the dashboard's filters (status, workflow, branch, trigger, who,
date range) and its keyset cursors in both directions, through the API client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions.models import Execution
from executions.services import do_create_execution
from tests import base

pytestmark = pytest.mark.django_db


def run(workflow, ref="main", **kw):
    kw.setdefault("trigger", "manual")
    return do_create_execution(workflow, ref=ref, ref_kind="branch", **kw)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def walk(api, url: str, key: str = "next") -> list[int]:
    seen = []
    while url:
        response = api.get(url)
        seen += ids(response)
        url = response.json()[key]
    return seen


def test_filters_match_the_dashboards(workflow, service, users):
    other = base.save_document(service, base.app_cd_document(name="second"))
    mains = [run(workflow, triggered_by=users["bob"]) for _ in range(3)]
    feature = run(other, ref="feature/x", trigger="api", triggered_by=users["carol"])
    Execution.objects.filter(pk=mains[0].pk).update(
        status="failed", created_at=timezone.now() - timedelta(days=3)
    )
    api = base.client_for(users["carol"])
    assert ids(api.get("/api/executions/?branch=feature/x")) == [feature.pk]
    # mains[0] moved three days back: the oldest of bob's runs now.
    assert ids(api.get("/api/executions/?who=bob")) == [mains[2].pk, mains[1].pk, mains[0].pk]
    assert ids(api.get("/api/executions/?trigger=api")) == [feature.pk]
    assert ids(api.get("/api/executions/?status=failed,error")) == [mains[0].pk]
    assert ids(api.get(f"/api/executions/?workflow={other.pk}")) == [feature.pk]
    assert ids(api.get("/api/executions/?who=nobody")) == []
    day = timezone.localdate() - timedelta(days=3)
    assert ids(api.get(f"/api/executions/?since={day}&until={day}")) == [mains[0].pk]
    assert mains[0].pk not in ids(api.get(f"/api/executions/?since={day + timedelta(days=1)}"))


def test_bad_filters_are_400_naming_the_parameter(workflow, users):
    api = base.client_for(users["carol"])
    for query, field in [
        ("status=bogus", "status"),
        ("trigger=carrier-pigeon", "trigger"),
        ("since=yesterday", "since"),
        ("since=2026-02-01&until=2026-01-01", "until"),
        ("workflow=abc", "workflow"),
        ("cursor=nonsense", "cursor"),
    ]:
        response = api.get(f"/api/executions/?{query}")
        assert response.status_code == 400, query
        assert [e["field"] for e in response.json()["errors"]] == [field], query


def test_cursor_pages_forward_and_back_without_gaps(workflow, service, users):
    other = base.save_document(service, base.app_cd_document(name="second"))
    made = [run(workflow if n % 3 else other) for n in range(23)]
    # Ties on created_at are ordered by id.
    Execution.objects.filter(pk__in=[m.pk for m in made[5:9]]).update(created_at=made[5].created_at)
    api = base.client_for(users["carol"])
    newest_first = sorted(Execution.objects.values_list("created_at", "id"), reverse=True)
    forward = walk(api, "/api/executions/?limit=4")
    assert forward == [pk for _, pk in newest_first]
    last = api.get("/api/executions/?limit=4")
    while last.json()["next"]:
        last = api.get(last.json()["next"])
    # Walking back page by page meets every earlier run once, each page newest first.
    pages, url = [], last.json()["previous"]
    while url:
        response = api.get(url)
        pages.insert(0, ids(response))
        url = response.json()["previous"]
    assert [pk for page in pages for pk in page] + ids(last) == forward


def test_other_projects_runs_are_not_listed(workflow, users):
    run(workflow)
    api = base.client_for(users["erin"])  # not a member
    assert ids(api.get("/api/executions/")) == []
    assert ids(api.get(f"/api/executions/?workflow={workflow.pk}")) == []


def test_pages_merge_across_union_chunks(workflow, service, users, monkeypatch):
    """More (workflow, status) terms than one compound SELECT may hold (SQLite: 500) are read
    in several queries and merged: the same pages as in one."""
    others = [base.save_document(service, base.app_cd_document(name=f"w{i}")) for i in range(3)]
    for n in range(14):
        made = run([workflow, *others][n % 4])
        Execution.objects.filter(pk=made.pk).update(status=["pending", "failed"][n % 2])
    api = base.client_for(users["carol"])
    url = "/api/executions/?status=pending,failed&limit=3"
    whole = walk(api, url)
    monkeypatch.setattr("executions.dashboard.UNION_TERMS", 3)
    assert walk(api, url) == whole
    assert len(whole) == 14
