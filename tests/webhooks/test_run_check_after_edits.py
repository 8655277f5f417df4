"""A delivery re-checks the stored workflow before each run (workflows.services.validate_for_run).

The full check is skipped while every row it reads is unchanged since the last one passed; these
tests make each kind of change the check depends on, straight to the rows as an edit outside
the API would (no model save, no signal), between two deliveries, and expect the second to be
refused with the reason the full check gives."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executions.models import Execution
from executions.services import check_can_run
from tests import base
from tests.webhooks.helpers import Hook, deliver, github_push, sha_of
from workflows import services as workflow_services
from workflows.models import (
    CIVariable,
    Environment,
    Project,
    RegistryConnection,
    Workflow,
    WorkflowEnvironment,
)

pytestmark = pytest.mark.django_db


def other_project() -> Project:
    return Project.objects.create(name="other")


# name -> (edit made between the two deliveries, what the refusal says)
EDITS: dict[str, tuple[Callable[[Workflow], object], str]] = {
    "environment deactivated": (
        lambda wf: Environment.objects.filter(name="prod").update(is_active=False),
        'environment "prod" is inactive',
    ),
    "environment moved to another project": (
        lambda wf: Environment.objects.filter(name="dev").update(project=other_project()),
        'environment "dev" belongs to another project',
    ),
    "registry moved to another project": (
        lambda wf: RegistryConnection.objects.filter(name="local").update(project=other_project()),
        "the registry belongs to another project",
    ),
    "approver deactivated": (
        lambda wf: User.objects.filter(username="dave").update(is_active=False),
        'no active user "dave"',
    ),
    "approver removed from the project": (
        lambda wf: wf.service.project.members.remove(User.objects.get(username="dave")),
        '"dave" is not a member of project "demo"',
    ),
    "approver link removed": (
        lambda wf: WorkflowEnvironment.approver_users.through.objects.filter(
            workflowenvironment__workflow=wf
        ).delete(),
        "1 approval(s) required but no approvers designated",
    ),
    "approvals required raised": (
        lambda wf: WorkflowEnvironment.objects.filter(workflow=wf, environment__name="prod").update(
            required_approvals=3
        ),
        "3 approvals required but only 1 approver(s) designated",
    ),
    "port cleared on the workflow row": (
        lambda wf: Workflow.objects.filter(pk=wf.pk).update(service_port=None),
        "an App CD workflow needs the service port",
    ),
    "secret value cleared": (
        lambda wf: CIVariable.objects.filter(workflow=wf, key="NPM_TOKEN").update(secret_value=""),
        "a secret variable needs a value",
    ),
}


@pytest.fixture
def delivery_cd(github_hook: Hook, environments) -> Workflow:
    """An App CD workflow on the hook's repository whose first delivery ran it (check passed)."""
    cd = base.save_document(github_hook.workflow.service, base.app_cd_document(name="deliver"))
    deliver(github_hook, "github", github_push("main", after=sha_of(1)))
    assert Execution.objects.filter(workflow=cd).count() == 1
    return cd


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_an_edit_since_the_last_passing_check_is_seen(
    github_hook: Hook, delivery_cd: Workflow, edit: str
):
    change, message = EDITS[edit]
    change(delivery_cd)

    response = deliver(github_hook, "github", github_push("main", after=sha_of(2)))

    assert Execution.objects.filter(workflow=delivery_cd).count() == 1
    assert f"demo/shop/deliver cannot run: {message}" in response.json()["reason"]


def test_a_group_deleted_since_the_last_passing_check_is_seen(github_hook: Hook, environments):
    Group.objects.create(name="releasers")
    doc = base.app_cd_document(name="deliver")
    doc["deploy"]["environments"][2]["approvers"] = {"users": [], "groups": ["releasers"]}
    cd = base.save_document(github_hook.workflow.service, doc)
    deliver(github_hook, "github", github_push("main", after=sha_of(1)))
    assert Execution.objects.filter(workflow=cd).count() == 1

    Group.objects.filter(name="releasers").delete()
    response = deliver(github_hook, "github", github_push("main", after=sha_of(2)))

    assert Execution.objects.filter(workflow=cd).count() == 1
    assert "1 approval(s) required but no approvers designated" in response.json()["reason"]


def test_an_unchanged_workflow_is_not_checked_in_full_again(github_hook: Hook, delivery_cd):
    """A delivery of unchanged workflows reads only the check's rows, not the whole document
    again; a change to any column of those rows brings the full check back."""
    with CaptureQueriesContext(connection) as unchanged:
        deliver(github_hook, "github", github_push("main", after=sha_of(2)))
    Environment.objects.filter(name="staging").update(namespace="staging-2")
    with CaptureQueriesContext(connection) as changed:
        deliver(github_hook, "github", github_push("main", after=sha_of(3)))
    with CaptureQueriesContext(connection) as again:
        deliver(github_hook, "github", github_push("main", after=sha_of(4)))

    assert Execution.objects.filter(workflow=delivery_cd).count() == 4
    assert len(changed) > len(unchanged) + 5
    assert len(again) == len(unchanged)


def test_a_pass_of_a_workflow_loaded_before_an_edit_is_not_remembered(github_hook: Hook):
    """A door may hold a workflow loaded before an edit: its check passes on the old links, and
    must not count as a pass of the rows as they are now."""
    foreign = base.make_registry(other_project(), name="theirs", url="127.0.0.1:5001")
    loaded = Workflow.objects.select_related("service__project").get(pk=github_hook.workflow.pk)
    Workflow.objects.filter(pk=loaded.pk).update(registry=foreign)

    check_can_run(None, loaded)  # the object still names the project's own registry
    response = deliver(github_hook, "github", github_push("main", after=sha_of(1)))

    assert not Execution.objects.filter(workflow=loaded).exists()
    assert (
        "demo/shop/ci cannot run: the registry belongs to another project"
        in response.json()["reason"]
    )


def test_a_pass_is_trusted_for_a_while_only(github_hook: Hook, delivery_cd, monkeypatch):
    """Some rules read the clock (a cron schedule must fire within five years): past
    RUN_CHECK_PASS_SECONDS the full check runs again though no row changed."""
    with CaptureQueriesContext(connection) as trusted:
        deliver(github_hook, "github", github_push("main", after=sha_of(2)))
    monkeypatch.setattr(workflow_services, "RUN_CHECK_PASS_SECONDS", 0.0)
    with CaptureQueriesContext(connection) as expired:
        deliver(github_hook, "github", github_push("main", after=sha_of(3)))

    assert Execution.objects.filter(workflow=delivery_cd).count() == 3
    assert len(expired) > len(trusted) + 5
