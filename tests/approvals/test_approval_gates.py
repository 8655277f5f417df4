"""Approval gates and manual deploys through the API and the worker (the engine's task function):
N-of-M, who may decide, no self-approval, rejection, expiry, terminate, audit, notifications,
and two approvers deciding at the same moment."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker

from approvals.models import ApprovalEvent, ApprovalRequest
from approvals.services import expire_due_requests
from executions.engine import run_execution
from executions.models import Execution, StatusChange
from tests.base import client_for, save_document

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


@pytest.fixture(scope="module")
def prebuilt_image(real_services, docker_client):
    """A pre-built image in the open registry, for deploy-only workflows."""
    ref = f"{real_services['ATMOSLY_TEST_REGISTRY']}/approvals/app"
    docker_client.api.tag("localhost/busybox:latest", ref, "1")
    for chunk in docker_client.api.push(ref, tag="1", stream=True, decode=True):
        assert "error" not in chunk, chunk
    return f"{ref}:1"


def gated_workflow(service, prebuilt_image, **step):
    doc = {
        "name": "release",
        "pipeline_type": "app_cd",
        "source": {"kind": "image", "image": prebuilt_image},
        "deploy": {"port": 8080, "environments": [{"environment": "prod", **step}]},
    }
    return save_document(service, doc)


@pytest.fixture
def two_of_two(service, environments, registry, prebuilt_image, users):
    users["dave"].email = "dave@example.org"
    users["dave"].save()
    return gated_workflow(
        service,
        prebuilt_image,
        required_approvals=2,
        approvers={"users": ["dave", "alice"], "groups": []},
    )


def start(workflow, user) -> Execution:
    response = client_for(user).post(f"/api/workflows/{workflow.pk}/run/", {}, format="json")
    assert response.status_code == 201, response.content
    run_execution(response.json()["id"])
    return Execution.objects.get(pk=response.json()["id"])


def approve(user, request_id, comment="ok"):
    return client_for(user).post(
        f"/api/approvals/{request_id}/approve/", {"comment": comment}, format="json"
    )


def test_two_of_two_then_resumed(two_of_two, users):
    execution = start(two_of_two, users["bob"])
    assert execution.status == "approval_pending", execution.status_reason
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.required == 2 and request.status == "open"
    stage = request.stage_run
    assert stage.status == "waiting" and stage.name == "Deploy prod"
    assert [m.to for m in mail.outbox] == [["alice@example.org", "dave@example.org"]]
    assert "Approval needed" in mail.outbox[0].subject

    mine = client_for(users["dave"]).get("/api/approvals/?mine=1").json()["results"]
    assert [r["id"] for r in mine] == [request.pk]
    assert client_for(users["carol"]).get("/api/approvals/?mine=1").json()["results"] == []

    no_perm = approve(users["bob"], request.pk)  # Developer: no "approve pipeline"
    assert no_perm.status_code == 403 and "Approve pipeline" in no_perm.json()["detail"]
    users["carol"].groups.add(users["dave"].groups.first())  # carol may approve, not designated
    carol = type(users["carol"]).objects.get(pk=users["carol"].pk)  # drop the cached perms
    not_designated = approve(carol, request.pk)
    assert not_designated.status_code == 403
    assert 'not a designated approver for "prod"' in not_designated.json()["detail"]

    first = approve(users["dave"], request.pk)
    assert first.status_code == 200 and first.json()["approvals"] == 1
    assert Execution.objects.get(pk=execution.pk).status == "approval_pending"
    again = approve(users["dave"], request.pk)
    assert again.status_code == 409 and "already decided" in again.json()["detail"]

    queue = get_broker()  # the ORM broker, or Redis in the scale mode
    queued = queue.queue_size()
    second = approve(users["alice"], request.pk)
    assert second.status_code == 200 and second.json()["status"] == "approved"
    execution.refresh_from_db()
    assert execution.status == "running"
    assert queue.queue_size() == queued + 1  # resumed: handed back to the workers
    late = approve(users["alice"], request.pk)
    assert late.status_code == 409

    kinds = list(ApprovalEvent.objects.filter(request=request).values_list("kind", flat=True))
    assert kinds == ["requested", "approved", "approved", "granted"]
    detail = client_for(users["carol"]).get(f"/api/approvals/{request.pk}/").json()
    assert [d["user"] for d in detail["decisions"]] == ["dave", "alice"]


def test_no_self_approval_unless_allowed(service, environments, registry, prebuilt_image, users):
    workflow = gated_workflow(
        service, prebuilt_image, required_approvals=1, approvers={"users": ["alice"]}
    )
    execution = start(workflow, users["alice"])
    request = ApprovalRequest.objects.get(execution=execution)
    response = approve(users["alice"], request.pk)
    assert response.status_code == 403
    assert "self-approval is not allowed" in response.json()["detail"]

    doc = client_for(users["alice"]).get(f"/api/workflows/{workflow.pk}/").json()
    doc["deploy"]["environments"][0]["allow_self_approval"] = True
    assert (
        client_for(users["alice"])
        .put(f"/api/workflows/{workflow.pk}/", doc, format="json")
        .status_code
        == 200
    )
    assert approve(users["alice"], request.pk).status_code == 200
    assert Execution.objects.get(pk=execution.pk).status == "running"


def test_pusher_of_a_webhook_run_cannot_approve(
    service, environments, registry, prebuilt_image, users
):
    workflow = gated_workflow(
        service, prebuilt_image, required_approvals=1, approvers={"users": ["dave"]}
    )
    from executions.services import do_create_execution

    execution = do_create_execution(workflow, ref="main", trigger="webhook", triggered_by=None)
    Execution.objects.filter(pk=execution.pk).update(actor_login="Dave")
    run_execution(execution.pk)
    request = ApprovalRequest.objects.get(execution=execution)
    assert approve(users["dave"], request.pk).status_code == 403


def test_one_rejection_ends_the_run(two_of_two, users):
    execution = start(two_of_two, users["bob"])
    request = ApprovalRequest.objects.get(execution=execution)
    assert approve(users["dave"], request.pk).status_code == 200
    no_reason = client_for(users["alice"]).post(
        f"/api/approvals/{request.pk}/reject/", {}, format="json"
    )
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"] == [
        {"field": "comment", "message": "say why you reject the deployment"}
    ]
    rejected = client_for(users["alice"]).post(
        f"/api/approvals/{request.pk}/reject/", {"comment": "not during the freeze"}, format="json"
    )
    assert rejected.status_code == 200
    execution.refresh_from_db()
    assert execution.status == "approval_rejected"
    assert execution.status_reason == "Rejected by alice: not during the freeze"
    assert request.stage_run.__class__.objects.get(pk=request.stage_run_id).status == "failed"


def test_expiry(two_of_two, users):
    execution = start(two_of_two, users["bob"])
    request = ApprovalRequest.objects.get(execution=execution)
    assert abs(request.expires_at - request.created_at - timedelta(days=7)) < timedelta(seconds=1)
    ApprovalRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    mail.outbox.clear()
    assert expire_due_requests() == 1
    execution.refresh_from_db()
    assert (execution.status, execution.status_reason) == ("approval_rejected", "expired")
    assert "Approval expired" in mail.outbox[0].subject
    response = approve(users["dave"], request.pk)
    assert response.status_code == 409 and "expired" in response.json()["detail"]


def test_terminate_while_waiting_deploys_nothing(two_of_two, users):
    execution = start(two_of_two, users["bob"])
    request = ApprovalRequest.objects.get(execution=execution)
    response = client_for(users["bob"]).post(f"/api/executions/{execution.pk}/terminate/")
    assert response.status_code == 202 and response.json()["status"] == "terminated"
    assert approve(users["dave"], request.pk).status_code == 409
    request.refresh_from_db()
    assert request.status == "cancelled"
    assert not Execution.objects.get(pk=execution.pk).stages.filter(status="running").exists()


def test_manual_deploy(service, environments, registry, prebuilt_image, users):
    workflow = gated_workflow(service, prebuilt_image, mode="manual")
    execution = start(workflow, users["bob"])
    assert execution.status == "deployment_pending"
    url = f"/api/executions/{execution.pk}/deploy/"
    assert client_for(users["carol"]).post(url).status_code == 403
    response = client_for(users["bob"]).post(url)
    assert response.status_code == 202 and response.json()["status"] == "running"
    assert client_for(users["bob"]).post(url).status_code == 409


def test_approvers_changed_while_waiting_applies_and_is_audited(two_of_two, users):
    execution = start(two_of_two, users["bob"])
    request = ApprovalRequest.objects.get(execution=execution)
    doc = client_for(users["alice"]).get(f"/api/workflows/{two_of_two.pk}/").json()
    doc["deploy"]["environments"][0]["approvers"] = {"users": ["alice"], "groups": ["Approver"]}
    assert (
        client_for(users["alice"])
        .put(f"/api/workflows/{two_of_two.pk}/", doc, format="json")
        .status_code
        == 200
    )
    event = ApprovalEvent.objects.get(request=request, kind="approvers_changed")
    assert event.user == users["alice"]
    assert event.detail["after"]["groups"] == ["Approver"]
    assert approve(users["dave"], request.pk).status_code == 200  # through the group now


@pytest.mark.parametrize("required", [1, 2])
def test_two_approvers_at_the_same_moment(
    service, environments, registry, prebuilt_image, users, required
):
    workflow = gated_workflow(
        service,
        prebuilt_image,
        required_approvals=required,
        approvers={"users": ["dave", "alice"]},
    )
    execution = start(workflow, users["bob"])
    request = ApprovalRequest.objects.get(execution=execution)
    barrier = threading.Barrier(2)
    codes: dict[str, int] = {}

    def decide(name):
        barrier.wait()
        try:
            codes[name] = approve(users[name], request.pk).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(n,)) for n in ("dave", "alice")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if required == 1:
        assert sorted(codes.values()) == [200, 409]
    else:
        assert sorted(codes.values()) == [200, 200]
    resumed = StatusChange.objects.filter(
        execution=execution, from_status="approval_pending", to_status="running"
    )
    assert resumed.count() == 1
    assert ApprovalRequest.objects.get(pk=request.pk).status == "approved"


def test_a_secret_quoted_in_a_rejection_is_masked(two_of_two, users):
    """The web process masks with the secrets stored for the workflow (issue 10, part 3)."""
    from workflows.models import CIVariable

    secret = "pr0d-deploy-key-41d9"
    CIVariable.objects.create(
        workflow=two_of_two, key="DEPLOY_KEY", secret_value=secret, is_secret=True, scope="runtime"
    )
    execution = start(two_of_two, users["bob"])
    request = ApprovalRequest.objects.get(execution=execution)
    comment = f"the run prints DEPLOY_KEY={secret}, rotate it"
    rejected = client_for(users["alice"]).post(
        f"/api/approvals/{request.pk}/reject/", {"comment": comment}, format="json"
    )
    assert rejected.status_code == 200
    shown = client_for(users["alice"]).get(f"/api/executions/{execution.pk}/").json()
    assert shown["status_reason"] == "Rejected by alice: the run prints DEPLOY_KEY=***, rotate it"
    assert secret not in str(shown)
    assert not StatusChange.objects.filter(execution=execution, reason__contains=secret).exists()
