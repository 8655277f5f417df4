"""The per-(service, environment) deploy lock on its own: the database refuses a second holder,
a stale holder is taken over, and a terminate while waiting changes nothing. (Two real deploys
waiting on each other are in test_local_target.py.)"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from executions.models import DeployLock, Release
from executions.services import do_terminate
from executions.status import ExecutionStatus as S
from tests.deploy import deploy_only, log_text, run, run_in_thread, start_deploy, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

IMAGE = "127.0.0.1:5000/demo/web:v1", "sha256:" + "1" * 64


@pytest.fixture
def workflow(service, k8s_envs, settings):
    settings.DEPLOY_POLL_SECONDS = 0.05
    return deploy_only(service, IMAGE[0], port=8080, envs=("dev",))


def holder(workflow, environment, status=S.RUNNING):
    """Another run that holds the dev lock (as if its deploy were in progress)."""
    other = start_deploy(workflow, environment, *IMAGE)
    other.status, other.heartbeat_at, other.worker_id = status, timezone.now(), "elsewhere"
    other.save()
    return DeployLock.objects.create(
        service=workflow.service,
        environment=environment,
        execution=other,
        stage_run=other.stages.get(),
    )


def test_the_database_refuses_a_second_holder(workflow, k8s_envs):
    lock = holder(workflow, k8s_envs["dev"])
    other = start_deploy(workflow, k8s_envs["dev"], *IMAGE)
    with pytest.raises(IntegrityError), transaction.atomic():
        DeployLock.objects.create(
            service=lock.service,
            environment=lock.environment,
            execution=other,
            stage_run=other.stages.get(),
        )


def test_a_stale_lock_is_taken_over(workflow, k8s_envs):
    holder(workflow, k8s_envs["dev"], status=S.ERROR)  # its worker died
    execution = run(start_deploy(workflow, k8s_envs["dev"], *IMAGE))
    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert "Removed the stale deploy lock of" in log_text(execution)
    assert not DeployLock.objects.exists()


def test_terminate_while_waiting_for_the_lock_changes_nothing(workflow, k8s_envs):
    first = run(start_deploy(workflow, k8s_envs["dev"], *IMAGE))
    release = Release.objects.get(execution=first)
    lock = holder(workflow, k8s_envs["dev"])
    waiting = start_deploy(workflow, k8s_envs["dev"], *IMAGE)
    thread = run_in_thread(waiting.pk)
    wait_for(lambda: "Waiting for" in log_text(waiting), 10, "the deploy to wait")
    do_terminate(waiting)
    thread.join(20)
    waiting.refresh_from_db()
    where = f"nothing was deployed; dev stays on release #{release.pk} ({release.version})"
    assert waiting.status == S.TERMINATED
    assert waiting.status_reason == f"Terminated during Deploy dev: {where}"
    assert list(DeployLock.objects.all()) == [lock]  # the holder keeps it
