"""The dashboard page through the HTTP client: a row per visible workflow with its last runs,
the runs list's filters and keyset pagination, and a constant number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions.models import Execution
from executions.services import do_create_execution
from tests import base

pytestmark = pytest.mark.django_db


def runs(workflow, n, **kw):
    made = [
        do_create_execution(workflow, ref="main", ref_kind="branch", trigger="manual", **kw)
        for _ in range(n)
    ]
    return made


def listed(response) -> list[int]:
    import re

    return [int(x) for x in re.findall(r'data-run="(\d+)"', response.content.decode())]


def test_rows_show_last_run_and_last_ten(client, workflow, users):
    made = runs(workflow, 12, triggered_by=users["bob"])
    Execution.objects.filter(pk=made[-1].pk).update(commit_sha="abcdef1234567890" * 2)
    client.force_login(users["carol"])
    page = client.get("/").content.decode()
    row = page.split(f'<tr data-workflow="{workflow.pk}">')[1].split("</tr>")[0]
    assert f'href="/executions/{made[-1].pk}/" class="status status-pending"' in row
    assert "abcdef1" in row and ">bob<" in row and ">main<" in row
    assert row.count('class="dot ') == 10


def test_other_projects_are_not_shown(client, workflow, users):
    runs(workflow, 1)
    client.force_login(users["erin"])  # not a member
    page = client.get("/").content.decode()
    assert f'data-workflow="{workflow.pk}"' not in page and "data-run=" not in page


def test_filters_and_keyset_pages(client, workflow, users):
    made = runs(workflow, 30)
    feature = do_create_execution(
        workflow, ref="feature/x", ref_kind="branch", trigger="manual", triggered_by=users["bob"]
    )
    client.force_login(users["carol"])
    first = client.get("/")
    assert listed(first)[:2] == [feature.pk, made[-1].pk] and len(listed(first)) == 25
    next_url = first.content.decode().split('data-testid="runs-next"')[0].rsplit('href="', 1)[1]
    second = client.get("/" + next_url.split('"')[0].replace("&amp;", "&"))
    assert listed(second) == [r.pk for r in reversed(made[:6])]
    assert 'data-testid="runs-next"' not in second.content.decode()

    assert listed(client.get("/?branch=feature/x")) == [feature.pk]
    assert listed(client.get("/?who=bob")) == [feature.pk]
    assert listed(client.get("/?status=terminated")) == []
    assert len(listed(client.get("/?status=pending&status=running"))) == 25
    today = timezone.localdate()
    assert listed(client.get(f"/?until={today - timedelta(days=1)}")) == []
    # The next page's link keeps the filters.
    page = client.get("/?trigger=manual").content.decode()
    assert "trigger=manual&amp;after=" in page


def test_bad_filters_say_which_field(client, workflow, users):
    client.force_login(users["carol"])
    page = client.get("/?since=2026-02-01&until=2026-01-01&after=nonsense&status=bogus")
    assert page.status_code == 200
    text = page.content.decode()
    assert "until: must be on or after the start day" in text
    assert "after: not a cursor from this page" in text
    assert "status: Select a valid choice" in text


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/?status=failed&status=pending",
        "/?branch=main&trigger=manual",
        "/?who=bob",
        "/?since=2026-01-01&until=2099-12-31",
        "/?workflow={workflow}",
        "/api/executions/",
        "/api/executions/?status=failed,pending&branch=main",
        "/api/executions/?who=bob&trigger=manual",
        "/api/executions/?since=2026-01-01&until=2099-12-31&workflow={workflow}",
    ],
)
def test_queries_do_not_grow_with_runs(url, client, workflow, users, service):
    """The same number of queries with 2 runs and with 57 runs over more workflows, on every
    filter of the page and of the API (issue 15: the same at 1,000 and 1,000,000 runs)."""
    other = base.save_document(service, base.app_cd_document(name="second"))
    url = url.format(workflow=workflow.pk)
    get = client if not url.startswith("/api/") else base.client_for(users["carol"])
    client.force_login(users["carol"])
    runs(workflow, 2, triggered_by=users["bob"])
    get.get(url)  # the API client's user caches its permissions on its first request
    with CaptureQueriesContext(connection) as few:
        assert get.get(url).status_code == 200
    runs(workflow, 40, triggered_by=users["bob"])
    runs(other, 15)
    with CaptureQueriesContext(connection) as many:
        response = get.get(url)
    assert response.status_code == 200
    assert len(many) == len(few), (
        [q["sql"][:90] for q in many.captured_queries],
        [q["sql"][:90] for q in few.captured_queries],
    )


def test_next_pages_cost_the_same_queries(client, workflow, users):
    runs(workflow, 60)
    client.force_login(users["carol"])
    with CaptureQueriesContext(connection) as first:
        page = client.get("/").content.decode()
    next_url = page.split('data-testid="runs-next"')[0].rsplit('href="', 1)[1].split('"')[0]
    with CaptureQueriesContext(connection) as second:
        response = client.get("/" + next_url.replace("&amp;", "&"))
    assert len(listed(response)) == 25 and 'data-testid="runs-next"' in response.content.decode()
    assert len(second) == len(first)
