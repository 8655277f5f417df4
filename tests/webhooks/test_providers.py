"""Signed fixtures from GitHub, GitLab and Bitbucket start the right workflows, and only those."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

from executions.models import Execution
from integrations.models import WebhookDelivery
from tests import base
from tests.webhooks.helpers import (
    GITHUB_REPO,
    deliver,
    encode,
    fixture,
    github_push,
    make_hook,
    make_workflow,
    post,
    signed_headers,
)

pytestmark = pytest.mark.django_db

PUSHES = [
    ("github", "github_push", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "octocat"),
    ("gitlab", "gitlab_push", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "jsmith"),
    ("bitbucket", "bitbucket_push", "7c9d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d", "emma"),
]
SECRET_HEADERS = {"x-hub-signature-256", "x-hub-signature", "x-gitlab-token"}


@pytest.mark.parametrize(("provider", "name", "commit", "pusher"), PUSHES)
def test_signed_push_starts_the_workflow_of_that_repository_only(
    hooks, workflow, provider, name, commit, pusher
):
    hook = hooks[provider]
    response = deliver(hook, provider, fixture(name))

    assert response.status_code == 202, response.content
    assert response.json()["outcome"] == "triggered"
    run = Execution.objects.get()  # not the other providers' repositories, nor demo/web
    assert run.workflow == hook.workflow
    assert (run.status, run.trigger, run.branch) == ("pending", "webhook", "main")
    # Source checks out the commit pushed; the ref is the branch the push named, as a branch.
    assert (run.commit_sha, run.ref, run.ref_kind) == (commit, "main", "branch")
    assert run.actor_login == pusher
    assert response.json()["runs"] == [{"id": run.pk, "workflow": hook.workflow.pk, "number": 1}]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.branch, delivery.commit_sha) == ("triggered", "main", commit)
    assert list(delivery.executions.all()) == [run]
    assert not SECRET_HEADERS & {h.lower() for h in delivery.headers}
    assert bytes(delivery.body) == encode(fixture(name))


@pytest.mark.parametrize(
    ("provider", "name", "tag"),
    [
        ("github", "github_push_tag", "v1.2.0"),
        ("gitlab", "gitlab_tag_push", "v1.0.0"),
        ("bitbucket", "bitbucket_push_tag", "v2.0.0"),
    ],
)
def test_tag_push_matches_tag_patterns(hooks, provider, name, tag):
    event = "Tag Push Hook" if provider == "gitlab" else None
    response = deliver(hooks[provider], provider, fixture(name), event=event)
    assert response.json()["outcome"] == "triggered"
    run = Execution.objects.get()
    # A tag push names a tag, not a branch; {branch} in the image tag falls back to the tag.
    assert (run.branch, run.tag, run.ref, run.ref_kind) == ("", tag, tag, "tag")
    assert WebhookDelivery.objects.get().tag == tag


def test_tag_matching_no_pattern_is_ignored(github_hook):
    payload = fixture("github_push_tag")
    payload["ref"] = "refs/tags/nightly-7"
    response = deliver(github_hook, "github", payload)
    assert response.status_code == 202
    assert response.json()["outcome"] == "ignored"
    assert "tag nightly-7 matches no tag pattern" in response.json()["reason"]
    assert not Execution.objects.exists()


def test_branch_matching_no_rule_is_ignored(github_hook):
    payload = fixture("github_push")
    payload["ref"] = "refs/heads/release/1.2/hotfix"  # release/* does not cross /
    response = deliver(github_hook, "github", payload)
    assert response.json()["outcome"] == "ignored"
    assert "branch release/1.2/hotfix matches no branch rule" in response.json()["reason"]
    assert not Execution.objects.exists()


def test_push_matching_two_workflows_in_one_repository_starts_two_runs(project, github_hook):
    # A second service built from the same repository, written as an SSH URL in other case.
    other = make_workflow(project, "shop-api", "git@github.com:Octo-Org/shop.git")
    manual = make_workflow(project, "shop-docs", GITHUB_REPO, trigger="manual")
    elsewhere = base.make_project({}, name="elsewhere")
    base.make_registry(elsewhere)
    foreign = make_workflow(elsewhere, "shop", GITHUB_REPO)

    response = deliver(github_hook, "github", fixture("github_push"))

    started = {e.workflow for e in Execution.objects.all()}
    assert started == {github_hook.workflow, other}
    assert manual not in started and foreign not in started  # manual; another project
    assert len(response.json()["runs"]) == 2
    assert WebhookDelivery.objects.get().executions.count() == 2


@pytest.mark.parametrize(
    ("provider", "name", "event", "branch"),
    [
        ("github", "github_pull_request", "pull_request", "feature/readme"),
        ("gitlab", "gitlab_merge_request", "Merge Request Hook", "ms-viewport"),
        ("bitbucket", "bitbucket_pullrequest_created", "pullrequest:created", "feature/cart"),
    ],
)
def test_pull_requests_start_ci_workflows_that_build_them_only(
    project, environments, hooks, provider, name, event, branch
):
    hook = hooks[provider]
    repo = hook.workflow.service.repo_url
    no_prs = make_workflow(project, f"{provider}-no-prs", repo, pull_requests=False)
    cd = base.save_document(
        hook.workflow.service, base.app_cd_document(name="deliver")
    )  # App CD on the same repository: never builds pull requests

    response = deliver(hook, provider, fixture(name), event=event)

    assert response.json()["outcome"] == "triggered"
    run = Execution.objects.get()
    assert run.workflow == hook.workflow and run.branch == branch
    assert {no_prs, cd}.isdisjoint({e.workflow for e in Execution.objects.all()})


def test_bitbucket_pull_request_checks_out_the_branch_for_its_short_hash(bitbucket_hook):
    deliver(
        bitbucket_hook,
        "bitbucket",
        fixture("bitbucket_pullrequest_created"),
        event=("pullrequest:created"),
    )
    run = Execution.objects.get()
    assert (run.ref, run.commit_sha) == ("feature/cart", "")
    assert WebhookDelivery.objects.get().commit_sha == "3f4a5b6c7d8e"


def test_closed_pull_request_is_ignored(github_hook):
    payload = fixture("github_pull_request")
    payload["action"] = "closed"
    response = deliver(github_hook, "github", payload, event="pull_request")
    assert (response.status_code, response.json()["outcome"]) == (202, "ignored")
    assert not Execution.objects.exists()


def test_gitlab_merge_request_update_builds_only_with_new_commits(gitlab_hook):
    payload = fixture("gitlab_merge_request")
    payload["object_attributes"]["action"] = "update"
    response = deliver(gitlab_hook, "gitlab", payload, event="Merge Request Hook")
    assert response.json()["outcome"] == "ignored"
    payload["object_attributes"]["oldrev"] = "95790bf891e76fee5e1747ab589903a6a1f80f22"
    response = deliver(gitlab_hook, "gitlab", payload, event="Merge Request Hook")
    assert response.json()["outcome"] == "triggered"


@pytest.mark.parametrize(
    ("provider", "name", "event"),
    [("github", "github_ping", "ping"), ("bitbucket", "bitbucket_push", "diagnostics:ping")],
)
def test_ping_is_answered_200(hooks, provider, name, event):
    response = deliver(hooks[provider], provider, fixture(name), event=event)
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().reason.startswith("ping")
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("provider", "name"),
    [
        ("github", "github_push_delete"),
        ("gitlab", "gitlab_push"),
        ("bitbucket", "bitbucket_push_delete"),
    ],
)
def test_branch_deletion_is_ignored_with_2xx(hooks, provider, name):
    payload = fixture(name)
    if provider == "gitlab":
        payload.update(after="0" * 40, checkout_sha=None, ref="refs/heads/feature/old")
    response = deliver(hooks[provider], provider, payload)
    assert response.status_code == 202
    assert response.json()["outcome"] == "ignored"
    assert "feature/old was deleted" in response.json()["reason"]
    assert WebhookDelivery.objects.get().kind == "delete"
    assert not Execution.objects.exists()


def test_github_delete_event_is_ignored(github_hook):
    payload = {"ref": "feature/old", "ref_type": "branch", **fixture("github_ping")}
    response = deliver(github_hook, "github", payload, event="delete")
    assert (response.status_code, response.json()["outcome"]) == (202, "ignored")


@pytest.mark.parametrize(
    ("provider", "event"),
    [("github", "issues"), ("gitlab", "Note Hook"), ("bitbucket", "issue:created")],
)
def test_unsupported_event_is_202_ignored(hooks, provider, event):
    response = deliver(hooks[provider], provider, fixture("github_issues"), event=event)
    assert response.status_code == 202
    body = response.json()
    assert body["outcome"] == "ignored" and "starts nothing" in body["reason"]
    assert not Execution.objects.exists()


def test_github_form_encoded_payload(github_hook):
    body = urlencode({"payload": encode(fixture("github_push")).decode()}).encode()
    headers = signed_headers("github", body, github_hook.secret)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = post(github_hook.hook_id, "github", body, headers)
    assert response.json()["outcome"] == "triggered"


def test_hook_of_a_workflow_whose_repository_is_not_the_pushed_one(project, registry):
    hook = make_hook(make_workflow(project, "other", "https://github.com/octo-org/other.git"))
    response = deliver(hook, "github", fixture("github_push"))
    assert response.json()["outcome"] == "ignored"
    assert "builds octo-org/shop" in response.json()["reason"]


def test_hook_url_without_trailing_slash(github_hook):
    body = encode(fixture("github_push"))
    headers = signed_headers("github", body, github_hook.secret)
    response = Client().post(
        f"/hooks/github/{github_hook.hook_id}",
        data=body,
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 202


def test_a_deploying_workflow_is_checked_again_before_its_run(project, environments, github_hook):
    cd = base.save_document(github_hook.workflow.service, base.app_cd_document(name="deliver"))
    deliver(github_hook, "github", fixture("github_push"))
    assert Execution.objects.filter(workflow=cd).count() == 1

    environments[0].is_active = False  # deactivated since the workflow was saved
    environments[0].save()
    response = deliver(github_hook, "github", github_push("main", after="1" * 40))

    assert response.json()["outcome"] == "triggered"  # the CI workflow still runs
    assert Execution.objects.filter(workflow=cd).count() == 1
    assert (
        'demo/shop/deliver cannot run: environment "dev" is inactive' in (response.json()["reason"])
    )


def test_hooks_need_no_csrf_token(github_hook):
    response = deliver(
        github_hook, "github", fixture("github_push"), client=Client(enforce_csrf_checks=True)
    )
    assert response.status_code == 202
