"""Who may approve follows the code and the run, not the button: the pusher of a commit and
whoever started a run stay unable to approve however the run was repeated (API, worker)."""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest
from executions.engine import run_execution
from executions.models import Execution
from tests.approvals.test_approval_gates import approve, gated_workflow, prebuilt_image, start
from tests.base import client_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]
__all__ = ["prebuilt_image"]  # the module fixture, used here too


@pytest.fixture
def gate(service, environments, registry, prebuilt_image):
    return gated_workflow(
        service,
        prebuilt_image,
        required_approvals=1,
        approvers={"users": ["alice", "dave"], "groups": []},
    )


def rerun(user, execution: Execution, from_failed: bool = False) -> Execution:
    path = f"/api/executions/{execution.pk}/rerun/"
    answer = client_for(user).post(path, {"from_failed": from_failed}, format="json")
    assert answer.status_code == 201, answer.content
    run_execution(answer.json()["id"])
    return Execution.objects.get(pk=answer.json()["id"])


@pytest.mark.parametrize("from_failed", [False, True])
def test_who_started_the_run_cannot_approve_its_rerun(gate, users, from_failed):
    first = start(gate, users["alice"])  # alice starts it; she is also a designated approver
    request = ApprovalRequest.objects.get(execution=first)
    assert approve(users["alice"], request.pk).status_code == 403
    client_for(users["alice"]).post(f"/api/executions/{first.pk}/terminate/")

    again = rerun(users["bob"], Execution.objects.get(pk=first.pk), from_failed)
    assert again.status == "approval_pending", again.status_reason
    request = ApprovalRequest.objects.get(execution=again)
    refused = approve(users["alice"], request.pk)
    assert refused.status_code == 403, refused.content
    assert "You started or pushed this run" in refused.json()["detail"]
    assert approve(users["dave"], request.pk).status_code == 200


def test_the_pusher_stays_the_pusher_on_a_rerun(gate, users):
    first = start(gate, users["bob"])
    # What a webhook run records: who pushed the commit (no Django user may exist for them).
    Execution.objects.filter(pk=first.pk).update(actor_login="alice")
    client_for(users["bob"]).post(f"/api/executions/{first.pk}/terminate/")

    again = rerun(users["bob"], Execution.objects.get(pk=first.pk))
    assert again.actor_login == "alice"
    request = ApprovalRequest.objects.get(execution=again)
    assert approve(users["alice"], request.pk).status_code == 403
