"""Optimistic concurrency on the workflow document API: ETag on GET, If-Match on PUT/PATCH,
412 naming who saved in between; nothing is written by the refused save."""

from __future__ import annotations

import pytest

from tests import base
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def url(workflow) -> str:
    return f"/api/workflows/{workflow.pk}/"


def test_get_gives_version_as_etag(workflow, users):
    response = base.client_for(users["bob"]).get(url(workflow))
    assert response.status_code == 200
    assert response["ETag"] == f'"{response.data["version"]}"'
    assert response.data["version"] == 1


def test_save_with_current_version_bumps_it_and_names_the_editor(workflow, users):
    client = base.client_for(users["bob"])
    doc = client.get(url(workflow)).data
    doc["stage_timeout_minutes"] = 45
    response = client.put(url(workflow), doc, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 200, response.data
    assert response.data["version"] == 2
    assert response.data["updated_by"] == "bob"
    assert response["ETag"] == '"2"'


def test_stale_save_is_refused_with_who_changed_it(workflow, users):
    alice, bob = base.client_for(users["alice"]), base.client_for(users["bob"])
    doc = bob.get(url(workflow)).data
    mine = {**doc, "stage_timeout_minutes": 11}
    theirs = {**doc, "stage_timeout_minutes": 22}
    assert alice.put(url(workflow), theirs, format="json", HTTP_IF_MATCH='"1"').status_code == 200
    response = bob.put(url(workflow), mine, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 412
    assert response.data["updated_by"] == "alice"
    assert response.data["version"] == 2
    assert "alice saved this workflow" in response.data["detail"]
    assert Workflow.objects.get(pk=workflow.pk).stage_timeout_minutes == 22
    # Overwrite: the client sends the version it was told about.
    response = bob.put(url(workflow), mine, format="json", HTTP_IF_MATCH='W/"2"')
    assert response.status_code == 200
    assert Workflow.objects.get(pk=workflow.pk).stage_timeout_minutes == 11


def test_patch_and_missing_or_bad_if_match(workflow, users):
    client = base.client_for(users["bob"])
    stale = client.patch(
        url(workflow), {"stage_timeout_minutes": 9}, format="json", HTTP_IF_MATCH='"7"'
    )
    assert stale.status_code == 412
    bad = client.patch(
        url(workflow), {"stage_timeout_minutes": 9}, format="json", HTTP_IF_MATCH="x"
    )
    assert bad.status_code == 400
    assert (
        client.patch(url(workflow), {"stage_timeout_minutes": 9}, format="json").status_code == 200
    )
    assert Workflow.objects.get(pk=workflow.pk).version == 2


def test_invalid_save_does_not_use_up_a_version(workflow, users):
    client = base.client_for(users["bob"])
    doc = client.get(url(workflow)).data
    doc["push"]["registry"] = "nowhere"
    response = client.put(url(workflow), doc, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 400
    assert response.data["errors"][0]["field"] == "push.registry"
    assert Workflow.objects.get(pk=workflow.pk).version == 1
