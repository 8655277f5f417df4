"""Every way a run starts passes the same check (executions.services.check_can_run): the API,
a signed webhook push and its redelivery, a re-run, a rollback and a Cron CD's scheduled job.
A workflow linked (by an edit outside the API) to another project's registry or environment
starts nothing that would use that project's credentials, and the delivery log says why."""

from __future__ import annotations

import pytest
from django.test import Client

from executions.cron_jobs import run_cron_job
from executions.models import Execution, Release
from executions.services import do_change_status, do_create_execution
from executions.status import ExecutionStatus as S
from integrations.models import WebhookDelivery
from tests import base
from tests.base import client_for
from tests.webhooks.helpers import GITHUB_REPO, deliver, fixture, make_hook, make_workflow
from workflows.models import Workflow, WorkflowEnvironment

pytestmark = pytest.mark.django_db

FOREIGN = "the registry belongs to another project"


@pytest.fixture(params=["theirs", "local"], ids=["other-name", "same-name"])
def foreign_registry(request, users):
    """Another project's registry, named differently or like the demo project's own."""
    project = base.Project.objects.create(name="other")
    project.members.add(users["erin"])
    return base.make_registry(project, name=request.param, url="127.0.0.1:5001")


@pytest.fixture
def hook(project, registry):
    return make_hook(make_workflow(project, "shop", GITHUB_REPO))


def point_at(workflow: Workflow, registry) -> None:
    """The edit the review made through the admin: straight to the row."""
    Workflow.objects.filter(pk=workflow.pk).update(registry=registry)


def test_signed_push_starts_no_run_with_another_projects_registry(hook, foreign_registry, users):
    point_at(hook.workflow, foreign_registry)

    response = deliver(hook, "github", fixture("github_push"))

    assert response.json()["outcome"] != "triggered"
    assert not Execution.objects.filter(workflow=hook.workflow).exists()
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert f"demo/shop/ci cannot run: {FOREIGN}" in delivery.reason
    # The API refuses the same run, naming the field.
    api = client_for(users["alice"]).post(
        f"/api/workflows/{hook.workflow.pk}/run/", {}, format="json"
    )
    assert api.status_code == 400
    assert api.json()["errors"] == [{"field": "push.registry", "message": FOREIGN}]


def test_redelivery_starts_no_run_with_another_projects_registry(hook, foreign_registry, users):
    first = deliver(hook, "github", fixture("github_push"))
    assert Execution.objects.filter(workflow=hook.workflow).count() == 1
    point_at(hook.workflow, foreign_registry)

    response = client_for(users["alice"]).post(
        f"/api/webhook-deliveries/{first.json()['delivery']}/redeliver/"
    )

    assert Execution.objects.filter(workflow=hook.workflow).count() == 1
    again = WebhookDelivery.objects.exclude(pk=first.json()["delivery"]).get()
    assert FOREIGN in again.reason, response.json()


def test_rerun_is_refused_with_another_projects_registry(workflow, foreign_registry, users):
    execution = do_create_execution(workflow, ref="main", trigger="manual", enqueue=False)
    do_change_status(execution, S.RUNNING)
    do_change_status(execution, S.FAILED, "build failed")
    point_at(workflow, foreign_registry)

    response = client_for(users["alice"]).post(f"/api/executions/{execution.pk}/rerun/", {})

    assert response.status_code == 400
    assert {"field": "push.registry", "message": FOREIGN} in response.json()["errors"]
    assert workflow.executions.count() == 1


def test_rollback_is_refused_with_another_projects_registry(workflow, foreign_registry, users):
    dev = workflow.deploy_steps.get(order=0).environment
    one, _newer = (
        Release.objects.create(
            environment=dev,
            service=workflow.service,
            workflow=workflow,
            execution=do_create_execution(workflow, ref="main", trigger="manual", enqueue=False),
            image=f"127.0.0.1:5000/demo/web:v{n}",
            image_digest="sha256:" + str(n) * 64,
            commit_sha=str(n) * 40,
        )
        for n in (1, 2)
    )
    point_at(workflow, foreign_registry)

    response = client_for(users["alice"]).post(f"/api/releases/{one.pk}/rollback/", {})

    assert response.status_code == 400
    assert {"field": "push.registry", "message": FOREIGN} in response.json()["errors"]
    assert not workflow.executions.filter(trigger="rollback").exists()


def test_run_is_refused_with_another_projects_environment(workflow, users):
    other = base.Project.objects.create(name="other")
    (their_dev,) = base.make_environments(other, names=("dev",))  # the same name as ours
    WorkflowEnvironment.objects.filter(workflow=workflow, order=0).update(environment=their_dev)

    response = client_for(users["alice"]).post(
        f"/api/workflows/{workflow.pk}/run/", {}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "deploy.environments[0].environment",
            "message": 'environment "dev" belongs to another project',
        }
    ]


@pytest.fixture
def cron_release(service, environments, registry, foreign_registry) -> Workflow:
    """A Cron CD workflow released to dev, then linked to another project's registry."""
    doc = base.app_cd_document(name="nightly", pipeline_type="cron_cd")
    doc["deploy"] = {"cron_schedule": "*/5 * * * *", "environments": [{"environment": "dev"}]}
    workflow = base.save_document(service, doc)
    Release.objects.create(
        environment=environments[0],
        service=service,
        workflow=workflow,
        execution=do_create_execution(workflow, ref="main", trigger="manual", enqueue=False),
        image="127.0.0.1:5000/demo/web:v1",
        details={"job_pod": {"metadata": {"name": "nightly", "labels": {}}, "spec": {}}},
    )
    point_at(workflow, foreign_registry)
    return workflow


def test_scheduled_cron_job_is_refused_with_another_projects_registry(cron_release, environments):
    result = run_cron_job(cron_release.pk, environments[0].pk)

    assert result == {"skipped": f"demo/web/nightly cannot run: {FOREIGN}"}


@pytest.mark.parametrize(
    "task",
    [
        "triggers.schedules.run_cron_job",
        # Occurrences queued before the task moved to triggers.schedules: django-q2 stored this.
        "executions.cron_jobs.run_cron_job",
    ],
)
def test_a_queued_cron_occurrence_passes_the_check_under_either_task_path(
    task, cron_release, environments
):
    import threading

    from django_q.tasks import async_task, fetch

    # What django-q2's worker does with a queued task: find the function by its dotted path.
    # `sync` plays django-q2's worker in this process and sends `post_spawn`; the worker-start
    # loops (recovery, run dispatch) must not start here and race other tests' workers.
    done = fetch(async_task(task, cron_release.pk, environments[0].pk, sync=True))
    loops = {t.name for t in threading.enumerate()} & {"run-recovery", "run-dispatch"}
    assert not loops, f"{loops} started in the test process"

    assert done is not None and done.success, done and done.result
    assert done.result == {"skipped": f"demo/web/nightly cannot run: {FOREIGN}"}


def test_approver_must_be_a_member_of_the_project(workflow, users):
    alice = client_for(users["alice"])
    doc = alice.get(f"/api/workflows/{workflow.pk}/").json()
    doc["deploy"]["environments"][2]["approvers"]["users"] = ["erin"]  # not a member

    response = alice.put(f"/api/workflows/{workflow.pk}/", doc, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "deploy.environments[2].approvers.users",
            "message": '"erin" is not a member of project "demo"; add them to the project first',
        }
    ]


def test_approver_removed_from_the_project_stops_runs_and_decides_nothing(workflow, users):
    workflow.service.project.members.remove(users["dave"])

    response = client_for(users["alice"]).post(
        f"/api/workflows/{workflow.pk}/run/", {}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "deploy.environments[2].approvers.users"
    from approvals.services import designated_approvers

    assert designated_approvers(workflow.deploy_steps.get(order=2)) == []


def test_waiting_page_needs_view_workflows(users):
    frank = Client()  # a member without a role
    frank.force_login(users["frank"])
    assert frank.get("/approvals/").status_code == 403
    carol = Client()  # a Viewer
    carol.force_login(users["carol"])
    assert carol.get("/approvals/").status_code == 200
