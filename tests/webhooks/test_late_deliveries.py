"""Late and repeated deliveries with "cancel in progress": the run for the newest push of a
branch wins whatever order the deliveries arrive in, and the delivery log says why."""

from __future__ import annotations

import time

import pytest

from executions.models import Execution
from integrations.models import WebhookDelivery
from tests.webhooks.helpers import (
    GITHUB_REPO,
    deliver,
    github_push,
    make_hook,
    make_workflow,
    sha_of,
)

pytestmark = pytest.mark.django_db

A, B, C, D = sha_of(101), sha_of(102), sha_of(103), sha_of(104)


@pytest.fixture
def hook(project, registry):
    return make_hook(make_workflow(project, "shop", GITHUB_REPO, concurrency="cancel_in_progress"))


def run_of(commit: str) -> Execution | None:
    return Execution.objects.filter(commit_sha=commit).first()


def test_an_older_push_delivered_after_a_newer_one_neither_starts_nor_cancels(hook):
    # Two pushes to main: A, then B on top of A. GitHub delivers B first, A late.
    newer = deliver(hook, "github", github_push("main", before=A, after=B)).json()
    late = deliver(hook, "github", github_push("main", before=sha_of(100), after=A)).json()

    assert run_of(B).status == "pending"  # the newest commit's run is untouched
    assert run_of(A) is None  # the stale push starts nothing
    assert late["outcome"] == "ignored" and late["runs"] == []
    assert (
        f"did not start {A[:12]}: a newer push to main ({B[:12]}, delivery "
        f"#{newer['delivery']}) was received before this late one"
    ) in late["reason"]
    assert WebhookDelivery.objects.get(pk=late["delivery"]).reason == late["reason"]


def test_late_by_several_pushes_and_through_a_force_push(hook):
    # A → B → C (a force push: before is still the old head B) → D; delivered D, C, B, A.
    deliver(hook, "github", github_push("main", before=C, after=D))
    deliver(hook, "github", github_push("main", before=B, after=C, forced=True))
    deliver(hook, "github", github_push("main", before=A, after=B))
    deliver(hook, "github", github_push("main", before=sha_of(100), after=A))

    assert run_of(D).status == "pending"
    assert [run_of(sha) for sha in (A, B, C)] == [None, None, None]


def test_in_order_the_newer_push_still_cancels_the_older_run(hook):
    first = deliver(hook, "github", github_push("main", before=sha_of(100), after=A)).json()
    second = deliver(hook, "github", github_push("main", before=A, after=B)).json()

    assert first["outcome"] == second["outcome"] == "triggered"
    older = run_of(A)
    assert older.status == "terminated"
    assert f"a newer push to main ({B[:12]}, webhook delivery #{second['delivery']})" in (
        older.status_reason
    )
    assert run_of(B).status == "pending"


def test_a_redelivered_stale_push_is_refused_again(hook, users):
    from tests.base import client_for

    deliver(hook, "github", github_push("main", before=A, after=B))
    late = deliver(hook, "github", github_push("main", before=sha_of(100), after=A)).json()
    client = client_for(users["alice"])
    again = client.post(f"/api/webhook-deliveries/{late['delivery']}/redeliver/")
    assert again.status_code in (200, 201), again.content
    assert run_of(A) is None and run_of(B).status == "pending"
    assert "a newer push to main" in again.json()["reason"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.engine
def test_a_late_push_leaves_the_newer_running_run_running(
    project, registry, git_server, settings, real_services, users
):
    """The newer commit's run is already Running on the engine (its script is mid-way) when
    the older push arrives through the hook: it keeps running and the stale push starts
    nothing; the delivery log says why."""
    from tests.base import client_for
    from tests.executions import log_text, make_git_workflow, run_in_thread

    settings.DOCKER_HOST = real_services["DOCKER_HOST"]
    settings.EXECUTIONS_RUN_INLINE = False  # the test plays the worker
    workflow, older = make_git_workflow(
        project,
        git_server,
        {"README": "one\n"},
        registry,
        trigger_mode="automatic",
        branch_rules=[{"pattern": "main", "match": "exact"}],
        run_concurrency="cancel_in_progress",
        scripts={"pre_build": "echo newer-run-started; sleep 60"},
    )
    name = workflow.service.repo_url.rsplit("/", 1)[-1].removesuffix(".git")
    newer = git_server.commit(name, {"README": "two\n"})
    hook = make_hook(workflow)
    url = workflow.service.repo_url

    def push(before: str, after: str) -> dict:
        payload = github_push("main", before=before, after=after)
        payload["repository"].update(clone_url=url, html_url=url, ssh_url=url, git_url=url)
        return payload

    first = deliver(hook, "github", push(older, newer)).json()
    assert first["outcome"] == "triggered", first
    run = Execution.objects.get(pk=first["runs"][0]["id"])
    thread = run_in_thread(run.pk)
    try:
        deadline = time.monotonic() + 120
        while "newer-run-started" not in log_text(run) and time.monotonic() < deadline:
            time.sleep(0.2)
        run.refresh_from_db()
        assert run.status == "running" and "newer-run-started" in log_text(run), run.status

        late = deliver(hook, "github", push("0" * 40, older)).json()
        assert late["outcome"] == "ignored" and late["runs"] == [], late
        assert (
            f"did not start {older[:12]}: a newer push to main ({newer[:12]}, delivery "
            f"#{first['delivery']}) was received before this late one"
        ) in late["reason"]
        time.sleep(1)  # a cancel, had there been one, reaches the run within the engine's poll
        run.refresh_from_db()
        assert (run.status, run.status_reason) == ("running", "")
        assert not Execution.objects.filter(workflow=workflow, commit_sha=older).exists()
    finally:
        client_for(users["alice"]).post(f"/api/executions/{run.pk}/terminate/")
        thread.join(60)
    run.refresh_from_db()
    assert run.status == "terminated"
