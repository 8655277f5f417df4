"""One push starts one run: resent deliveries, two hooks, before == after, and all at once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from executions.models import Execution
from integrations.models import TriggeredCommit, WebhookDelivery
from tests.webhooks.helpers import (
    GITHUB_REPO,
    deliver,
    fixture,
    github_push,
    make_hook,
    make_workflow,
    sha_of,
)


@pytest.mark.django_db
def test_same_delivery_twice_starts_one_run(github_hook):
    first = deliver(github_hook, "github", fixture("github_push"), delivery="d-1")
    again = deliver(github_hook, "github", fixture("github_push"), delivery="d-1")

    assert first.json()["outcome"] == "triggered"
    assert (again.status_code, again.json()["outcome"]) == (202, "ignored")
    assert again.json()["reason"].startswith("duplicate: delivery d-1 was received before")
    assert Execution.objects.count() == 1
    copy = WebhookDelivery.objects.get(pk=again.json()["delivery"])
    assert copy.duplicate_of_id == first.json()["delivery"]


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["github", "gitlab", "bitbucket"])
def test_two_delivery_ids_for_the_same_commit_start_one_run(hooks, provider):
    name = {"github": "github_push", "gitlab": "gitlab_push", "bitbucket": "bitbucket_push"}
    first = deliver(hooks[provider], provider, fixture(name[provider]))
    second = deliver(hooks[provider], provider, fixture(name[provider]))

    assert first.json()["outcome"] == "triggered"
    assert second.json()["outcome"] == "ignored"
    assert "already started" in second.json()["reason"] and "as run #1" in second.json()["reason"]
    assert Execution.objects.count() == 1


@pytest.mark.django_db
def test_github_enterprise_second_push_with_before_equal_to_after(github_hook):
    sha = sha_of(1)
    deliver(github_hook, "github", github_push("main", after=sha, before=sha_of(0)))
    response = deliver(github_hook, "github", github_push("main", after=sha, before=sha))
    assert response.json()["outcome"] == "ignored"
    assert Execution.objects.count() == 1


@pytest.mark.django_db
def test_organisation_and_repository_hooks_firing_start_one_run_per_workflow(project, github_hook):
    # Two services in one repository, each with its own hook pasted into GitHub: every push
    # then arrives twice, and each delivery matches both workflows.
    other = make_hook(make_workflow(project, "shop-api", GITHUB_REPO))
    deliver(github_hook, "github", fixture("github_push"))
    second = deliver(other, "github", fixture("github_push"))

    assert second.json()["outcome"] == "ignored"
    assert sorted(e.workflow_id for e in Execution.objects.all()) == sorted(
        [github_hook.workflow.pk, other.workflow.pk]
    )


@pytest.mark.django_db
def test_a_new_commit_on_the_branch_starts_a_new_run(github_hook):
    for n in range(3):
        deliver(github_hook, "github", github_push("main", after=sha_of(n)))
    assert Execution.objects.count() == 3
    assert TriggeredCommit.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_copies_arriving_at_the_same_moment_start_one_run(project, registry):
    """Twelve copies of one push at once: the same delivery id resent, other delivery ids (a
    second hook), and before == after. The database's unique constraints decide, not timing."""
    from tests.webhooks.helpers import make_hook as hook_for

    hooks = [
        hook_for(make_workflow(project, "shop", GITHUB_REPO)),
        hook_for(make_workflow(project, "shop-api", GITHUB_REPO)),
    ]
    sha = sha_of(42)
    requests = []
    for i in range(12):
        payload = github_push("main", after=sha, before=sha if i % 3 == 2 else sha_of(41))
        delivery = "same-id" if i % 3 == 0 else f"id-{i}"
        requests.append((hooks[i % 2], payload, delivery))
    barrier = threading.Barrier(len(requests))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def send(hook, payload, delivery):
        try:
            barrier.wait(timeout=10)
            response = deliver(hook, "github", payload, delivery=delivery, client=Client())
            statuses.append(response.status_code)
        except BaseException as exc:  # reported below, with the thread's cause
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=r) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert statuses == [202] * 12
    runs = Execution.objects.all()
    assert sorted(r.workflow_id for r in runs) == sorted(h.workflow.pk for h in hooks)
    assert all(r.commit_sha == sha for r in runs)
    outcomes = list(WebhookDelivery.objects.values_list("outcome", flat=True))
    assert len(outcomes) == 12
    assert outcomes.count("triggered") == 1  # the first one in starts both workflows


@pytest.mark.django_db
def test_the_database_refuses_a_second_claim(github_hook):
    """The guarantee is the unique constraints, not a check made before inserting."""
    from django.db import IntegrityError, transaction

    workflow = github_hook.workflow
    TriggeredCommit.objects.create(workflow=workflow, ref="refs/heads/main", commit_sha=sha_of(1))
    with pytest.raises(IntegrityError), transaction.atomic():
        TriggeredCommit.objects.create(
            workflow=workflow, ref="refs/heads/main", commit_sha=sha_of(1)
        )
    row = {"workflow": workflow, "provider": "github", "delivery_id": "d", "outcome": "ignored"}
    WebhookDelivery.objects.create(**row, first_copy=True)
    WebhookDelivery.objects.create(**row, first_copy=False)  # a logged duplicate is fine
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.create(**row, first_copy=True)
