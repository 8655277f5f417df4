"""Every text that leaves a run is masked like the log: a runtime secret a crashing release
prints ends up in the deploy's error, and shows as *** in the status reason, the stage error,
the status history, the API and the run's page. Issue 10, part 3."""

from __future__ import annotations

import pytest
from django.test import Client

from executions.engine import run_execution
from executions.services import do_create_execution
from executions.status import ExecutionStatus as S
from tests import base
from tests.deploy import deploy_only, free_ports
from workflows.models import CIVariable

pytest_plugins = ["tests.realparts"]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

SECRET = "db-pa55word-7c1e"


def test_a_runtime_secret_in_a_failed_deploy_is_masked_everywhere(
    local, service, local_envs, images, users
):
    workflow = deploy_only(service, images.other("leak")[0], port=free_ports(1, 21500))
    CIVariable.objects.create(
        workflow=workflow, key="DB_PASSWORD", secret_value=SECRET, is_secret=True, scope="runtime"
    )
    execution = do_create_execution(workflow, ref="main", trigger="manual")
    run_execution(execution.pk)
    execution.refresh_from_db()

    assert execution.status == S.FAILED
    assert "cannot connect with password ***" in execution.status_reason, execution.status_reason
    deploy = execution.stages.get(kind="deploy")
    assert "cannot connect with password ***" in deploy.error
    history = list(execution.history.values_list("reason", flat=True))
    assert any("password ***" in reason for reason in history)

    alice = users["alice"]
    answer = base.client_for(alice).get(f"/api/executions/{execution.pk}/")
    assert answer.status_code == 200
    assert "password ***" in answer.json()["status_reason"]
    assert "password ***" in answer.json()["stages"][-1]["error"]
    browser = Client()
    browser.force_login(alice)
    page = browser.get(f"/executions/{execution.pk}/")
    assert page.status_code == 200
    for text in (answer.content.decode(), page.content.decode(), *history):
        assert SECRET not in text
