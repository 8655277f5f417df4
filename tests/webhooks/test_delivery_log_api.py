"""The delivery log, redeliver, the hook URLs and the secret, through the API, with permissions."""

from __future__ import annotations

import pytest

from executions.models import Execution
from integrations.models import WebhookDelivery
from tests.base import client_for
from tests.webhooks.helpers import deliver, fixture, github_push, sha_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(github_hook):
    """A triggered, an ignored and a rejected delivery."""
    deliver(github_hook, "github", fixture("github_push"))
    deliver(github_hook, "github", github_push("feature/login", after=sha_of(1)))
    deliver(github_hook, "github", fixture("github_push"), secret="wrong")
    return list(WebhookDelivery.objects.order_by("pk"))


def test_workflow_log_lists_time_provider_event_branch_commit_outcome(users, github_hook, log):
    response = client_for(users["carol"]).get(
        f"/api/workflows/{github_hook.workflow.pk}/webhook-deliveries/"
    )
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["id"] for r in rows] == [d.pk for d in reversed(log)]  # newest first
    rejected, ignored, triggered = rows
    assert triggered["summary"] == "triggered run #1"
    assert triggered["runs"][0]["number"] == 1
    assert (triggered["provider"], triggered["event"], triggered["branch"]) == (
        "github",
        "push",
        "main",
    )
    assert triggered["commit_sha"] == "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    assert triggered["received_at"]
    assert ignored["summary"].startswith("ignored: branch feature/login matches no branch rule")
    assert rejected["summary"].startswith("rejected: X-Hub-Signature-256 does not match")


def test_project_log(users, project, github_hook, gitlab_hook, log):
    deliver(gitlab_hook, "gitlab", fixture("gitlab_push"))
    response = client_for(users["carol"]).get(f"/api/projects/{project.pk}/webhook-deliveries/")
    assert response.status_code == 200
    assert response.json()["count"] == 4
    assert {r["provider"] for r in response.json()["results"]} == {"github", "gitlab"}


def test_workflow_log_shows_deliveries_from_other_hooks_that_started_it(project, github_hook):
    from tests.webhooks.helpers import GITHUB_REPO, make_workflow

    other = make_workflow(project, "shop-api", GITHUB_REPO)
    deliver(github_hook, "github", fixture("github_push"))
    client = client_for(project.members.get(username="alice"))
    rows = client.get(f"/api/workflows/{other.pk}/webhook-deliveries/").json()["results"]
    assert len(rows) == 1 and rows[0]["workflow"] == github_hook.workflow.pk


@pytest.mark.parametrize(
    ("user", "status"), [("alice", 200), ("carol", 200), ("frank", 403), ("erin", 404)]
)
def test_who_can_see_the_log(users, project, github_hook, log, user, status):
    client = client_for(users[user])
    assert (
        client.get(f"/api/workflows/{github_hook.workflow.pk}/webhook-deliveries/").status_code
        == status
    )
    assert client.get(f"/api/projects/{project.pk}/webhook-deliveries/").status_code == status
    assert client.get(f"/api/webhook-deliveries/{log[0].pk}/").status_code == status


def test_anonymous_sees_nothing(github_hook, log):
    assert client_for(None).get(f"/api/webhook-deliveries/{log[0].pk}/").status_code in (401, 403)


def test_delivery_detail_has_payload_and_headers_but_no_secret(users, log):
    body = client_for(users["carol"]).get(f"/api/webhook-deliveries/{log[0].pk}/").json()
    assert body["payload"]["ref"] == "refs/heads/main"
    assert body["headers"]["X-GitHub-Event"] == "push"
    assert "X-Hub-Signature-256" not in body["headers"]


@pytest.mark.parametrize(("user", "status"), [("carol", 403), ("frank", 403), ("erin", 404)])
def test_who_cannot_redeliver(users, log, user, status):
    response = client_for(users[user]).post(f"/api/webhook-deliveries/{log[1].pk}/redeliver/")
    assert response.status_code == status
    assert WebhookDelivery.objects.count() == 3


def test_redeliver_reruns_the_matching_on_the_stored_payload(users, github_hook, log):
    ignored = log[1]
    # The branch did not match; the rules change, and redelivering now starts the run.
    workflow = github_hook.workflow
    workflow.branch_rules = [*workflow.branch_rules, {"pattern": "feature/*", "match": "wildcard"}]
    workflow.save()

    response = client_for(users["alice"]).post(f"/api/webhook-deliveries/{ignored.pk}/redeliver/")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["redelivery_of"] == ignored.pk and body["redelivered_by"] == "alice"
    assert body["outcome"] == "triggered" and body["branch"] == "feature/login"
    assert Execution.objects.filter(branch="feature/login").count() == 1
    ignored.refresh_from_db()
    assert ignored.outcome == "ignored"  # the original entry stays as it was

    # Redelivering again finds the commit started: no second run.
    again = client_for(users["alice"]).post(f"/api/webhook-deliveries/{ignored.pk}/redeliver/")
    assert again.json()["outcome"] == "ignored" and "already started" in again.json()["reason"]
    assert Execution.objects.filter(branch="feature/login").count() == 1


def test_rejected_delivery_cannot_be_redelivered(users, log):
    response = client_for(users["alice"]).post(f"/api/webhook-deliveries/{log[2].pk}/redeliver/")
    assert response.status_code == 400
    assert "never authenticated" in response.json()["detail"]


def test_hook_urls_and_instructions_never_show_the_secret(users, github_hook, settings):
    settings.SITE_URL = "https://ci.example.org"
    response = client_for(users["carol"]).get(f"/api/workflows/{github_hook.workflow.pk}/webhook/")
    assert response.status_code == 200
    info = response.json()
    assert info["urls"] == {
        p: f"https://ci.example.org/hooks/{p}/{github_hook.hook_id}/"
        for p in ("github", "gitlab", "bitbucket")
    }
    assert info["secret"] is None and info["secret_shown_at"]
    assert github_hook.secret not in response.content.decode()
    assert all(p["where"] and p["steps"] for p in info["providers"])
    assert "release/*" in info["matching_help"]


def test_rotate_secret_shows_the_new_one_once_and_the_old_one_stops_working(users, github_hook):
    url = f"/api/workflows/{github_hook.workflow.pk}/webhook/rotate-secret/"
    assert client_for(users["carol"]).post(url).status_code == 403
    assert client_for(users["erin"]).post(url).status_code == 404

    response = client_for(users["alice"]).post(url)

    assert response.status_code == 201
    secret = response.json()["secret"]
    assert secret and secret != github_hook.secret
    assert response["Cache-Control"] == "no-store"
    info = client_for(users["alice"]).get(f"/api/workflows/{github_hook.workflow.pk}/webhook/")
    assert secret not in info.content.decode()
    assert deliver(github_hook, "github", fixture("github_push")).status_code == 401
    new = deliver(github_hook, "github", fixture("github_push"), secret=secret)
    assert new.status_code == 202


def test_hook_is_made_on_first_view(users, workflow):
    client = client_for(users["carol"])
    first = client.get(f"/api/workflows/{workflow.pk}/webhook/").json()
    second = client.get(f"/api/workflows/{workflow.pk}/webhook/").json()
    assert first["hook_id"] == second["hook_id"] and len(first["hook_id"]) >= 20
    assert first["secret_shown_at"] is None and "to make it" in first["secret_note"]
