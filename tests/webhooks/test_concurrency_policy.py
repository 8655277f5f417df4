"""Run concurrency: "queue" keeps older runs; "cancel in progress" terminates the older run on
the same branch before starting the new one."""

from __future__ import annotations

import pytest

from executions.models import Execution
from tests.webhooks.helpers import (
    GITHUB_REPO,
    deliver,
    github_push,
    make_hook,
    make_workflow,
    sha_of,
)

pytestmark = pytest.mark.django_db


def status_of(number: int) -> str:
    return Execution.objects.get(number=number).status


def test_cancel_in_progress_terminates_the_older_run_on_the_same_branch(project, registry):
    hook = make_hook(make_workflow(project, "shop", GITHUB_REPO, concurrency="cancel_in_progress"))
    deliver(hook, "github", github_push("main", after=sha_of(1)))
    deliver(hook, "github", github_push("release/1", after=sha_of(2)))
    assert (status_of(1), status_of(2)) == ("pending", "pending")

    deliver(hook, "github", github_push("main", after=sha_of(3)))

    assert status_of(1) == "terminated"
    older = Execution.objects.get(number=1)
    assert "a newer push to main" in older.status_reason
    assert status_of(2) == "pending"  # another branch
    assert status_of(3) == "pending"


def test_a_copy_of_the_same_push_does_not_cancel_its_own_run(project, registry):
    hook = make_hook(make_workflow(project, "shop", GITHUB_REPO, concurrency="cancel_in_progress"))
    deliver(hook, "github", github_push("main", after=sha_of(1)))
    deliver(hook, "github", github_push("main", after=sha_of(1)))
    assert Execution.objects.get().status == "pending"


def test_queue_keeps_the_older_run(github_hook):
    deliver(github_hook, "github", github_push("main", after=sha_of(1)))
    deliver(github_hook, "github", github_push("main", after=sha_of(2)))
    assert (status_of(1), status_of(2)) == ("pending", "pending")
