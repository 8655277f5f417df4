"""A run resumed after a gate is Running with no worker until one claims it. If its task is lost
(a broker flushed, a crash between commit and enqueue), crash recovery sees it once the lease
has passed and hands it to the workers again; it is never left Running for ever."""

from __future__ import annotations

import pytest
from django_q.brokers import get_broker

from executions.engine import run_execution
from executions.models import Execution
from executions.queue import TASK
from executions.recovery import recover_lost_executions
from tests.approvals.test_approval_gates import gated_workflow, prebuilt_image, start  # noqa: F401
from tests.base import client_for, queued_tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def queued_runs() -> list[int]:
    return [task["args"][0] for task in queued_tasks() if task["func"] == TASK]


def test_resumed_run_whose_task_was_lost_is_handed_on(
    service,
    environments,
    registry,
    prebuilt_image,  # noqa: F811 (the approvals tests' fixture, imported above)
    users,
):
    workflow = gated_workflow(service, prebuilt_image, mode="manual")
    execution = start(workflow, users["bob"])
    assert execution.status == "deployment_pending"
    get_broker().purge_queue()  # the start's own task, which `start` ran in this process
    response = client_for(users["bob"]).post(f"/api/executions/{execution.pk}/deploy/")
    assert response.status_code == 202 and response.json()["status"] == "running"
    assert queued_runs() == [execution.pk]
    get_broker().purge_queue()  # the task is lost: nobody will ever claim the run

    # Within the lease a worker may still be on its way: nothing is handed on twice.
    assert recover_lost_executions(lease_seconds=3600) == 0
    assert queued_runs() == []
    assert recover_lost_executions(lease_seconds=0) == 1
    assert queued_runs() == [execution.pk]
    assert Execution.objects.get(pk=execution.pk).status == "running"

    # A worker claims it and runs the deploy (whose outcome depends on the environment's
    # engine, not on this test): the run ends, it no longer waits for a worker.
    outcome = run_execution(execution.pk)
    execution.refresh_from_db()
    assert outcome == execution.status and execution.is_terminal
    assert execution.stages.get(name="Deploy prod").started_at is not None
    assert run_execution(execution.pk) == "not claimed"  # a second task finds nothing to do


def test_resumed_run_terminated_before_a_worker_took_it_ends_terminated(
    service,
    environments,
    registry,
    prebuilt_image,  # noqa: F811 (the approvals tests' fixture, imported above)
    users,
):
    workflow = gated_workflow(service, prebuilt_image, mode="manual")
    execution = start(workflow, users["bob"])
    bob = client_for(users["bob"])
    assert bob.post(f"/api/executions/{execution.pk}/deploy/").status_code == 202
    # Running, and no worker holds it: nothing runs that could stop and end it.
    response = bob.post(f"/api/executions/{execution.pk}/terminate/")
    assert response.status_code == 202 and response.json()["status"] == "terminated"
    execution.refresh_from_db()
    assert execution.status_reason.startswith("Terminated by bob before a worker took it up")
    assert execution.stages.get(name="Deploy prod").status == "terminated"
    assert run_execution(execution.pk) == "not claimed"  # the queued task finds it ended
