"""Who may approve follows the code and the run, not the button: the pusher of a commit and
whoever started a run stay unable to approve however the run was repeated (re-run, re-run
from the failed stage, redeliver, rollback, the API with the same commit), unless the
environment allows self-approval.

The pusher is who a REAL signed webhook delivery names (`pusher.name` of a GitHub push); the
commit is real (the test git server), and runs are built on the engine and deployed to the
Kubernetes API double."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from approvals.models import ApprovalRequest
from executions.engine import run_execution
from executions.models import Execution, Release
from executions.status import ExecutionStatus as S
from tests import base
from tests.approvals.test_approval_gates import approve, gated_workflow, prebuilt_image, start
from tests.base import client_for
from tests.k8s_double import KubernetesDouble
from tests.realparts import sample_app_files, unique_name
from tests.webhooks.helpers import deliver, github_push, make_hook
from workflows.models import Environment, WorkflowEnvironment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]
__all__ = ["prebuilt_image"]  # the module fixture, used here too

DENIED = "You started or pushed this run"


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
    assert DENIED in refused.json()["detail"]
    assert approve(users["dave"], request.pk).status_code == 200


# --- a pusher named by a real webhook delivery, on a real commit ------------------------------


@pytest.fixture
def engine(engine, settings):
    settings.DEPLOY_POLL_SECONDS = 0.05
    return engine


@pytest.fixture
def gina(users, project):
    """A second approver besides dave and alice, so a refusal is never "nobody may"."""
    user = User.objects.create_user("gina", "gina@example.org", "password")
    user.groups.add(Group.objects.get(name="Approver"))
    project.members.add(user)
    return user


@pytest.fixture
def pushed(engine, project, registry, git_server, gina):
    """A git workflow whose deploy to dev (on the Kubernetes double) needs one approval from
    alice, dave or gina, its hook, and the commit on main (not delivered yet)."""
    name = unique_name("self")
    sha = git_server.create_repo(name, sample_app_files(run_steps=0, marker=name))
    service = base.make_service(
        project,
        name=name,
        repo_url=git_server.repo_url(name),
        git_username=git_server.user,
        git_token=git_server.password,
    )
    with KubernetesDouble(namespaces=("dev",)) as double:
        dev = Environment.objects.create(
            project=project,
            name="dev",
            order=0,
            namespace="dev",
            target="kubernetes",
            kubeconfig=double.kubeconfig(namespace="dev"),
        )
        document = base.app_cd_document(
            scripts={},
            variables=[],
            scanners={"detect_secrets": False, "trivy": False, "sonarqube": False},
            push={"registry": "local", "repository": f"workflows-tests/{name}"},
        )
        document["source"]["branches"] = [{"pattern": "main", "match": "exact"}]
        document["deploy"]["environments"] = [
            {
                "environment": "dev",
                "required_approvals": 1,
                "approvers": {"users": ["alice", "dave", "gina"], "groups": []},
            }
        ]
        workflow = base.save_document(service, document, service.workflows.get())
        yield {
            "workflow": workflow,
            "hook": make_hook(workflow),
            "sha": sha,
            "url": git_server.repo_url(name),
            "dev": dev,
        }


def push_of(pushed, pusher: str) -> dict:
    """GitHub's push of the commit to main, made by `pusher`, for the test git repository."""
    url = pushed["url"]
    payload = github_push("main", after=pushed["sha"], before="0" * 40)
    payload["pusher"] = {"name": pusher, "email": f"{pusher}@example.org"}
    payload["repository"].update(clone_url=url, html_url=url, ssh_url=url, git_url=url)
    return payload


def gated_run(execution_id: int) -> tuple[Execution, ApprovalRequest]:
    """Plays the worker up to the gate: the run and its open request."""
    run_execution(execution_id)
    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == S.APPROVAL_PENDING, execution.status_reason
    return execution, ApprovalRequest.objects.get(execution=execution, status="open")


def refused(user, request: ApprovalRequest) -> None:
    answer = approve(user, request.pk)
    assert answer.status_code == 403, answer.content
    assert DENIED in answer.json()["detail"]


def approved_and_deployed(user, request: ApprovalRequest) -> Execution:
    answer = approve(user, request.pk)
    assert answer.status_code == 200, answer.content
    run_execution(request.execution_id)  # the worker resumes the run: deploy to the double
    execution = Execution.objects.get(pk=request.execution_id)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    return execution


def test_the_pusher_of_a_webhook_run_cannot_approve_it_nor_its_rerun(pushed, users, gina):
    answer = deliver(pushed["hook"], "github", push_of(pushed, "dave"))
    assert answer.status_code == 202 and answer.json()["outcome"] == "triggered", answer.json()
    first, request = gated_run(answer.json()["runs"][0]["id"])
    assert (first.actor_login, first.triggered_by) == ("dave", None)
    refused(users["dave"], request)
    client_for(users["alice"]).post(f"/api/executions/{first.pk}/terminate/")

    again = rerun(users["bob"], Execution.objects.get(pk=first.pk))  # bob may not approve
    assert again.status == S.APPROVAL_PENDING, again.status_reason
    request = ApprovalRequest.objects.get(execution=again)
    refused(users["dave"], request)
    assert approve(gina, request.pk).status_code == 200


def test_a_redelivered_push_keeps_its_pusher_and_who_redelivered_it(pushed, users, gina):
    workflow = pushed["workflow"]
    # The push arrives while the workflow is started by hand only: nothing starts.
    type(workflow).objects.filter(pk=workflow.pk).update(trigger_mode="manual")
    answer = deliver(pushed["hook"], "github", push_of(pushed, "dave"))
    assert answer.json()["runs"] == [], answer.json()
    type(workflow).objects.filter(pk=workflow.pk).update(trigger_mode="automatic")

    # alice redelivers it: she started the run, dave pushed its commit.
    again = client_for(users["alice"]).post(
        f"/api/webhook-deliveries/{answer.json()['delivery']}/redeliver/"
    )
    assert again.status_code in (200, 201), again.content
    run = Execution.objects.get(workflow=workflow)
    assert run.trigger == "webhook"
    run, request = gated_run(run.pk)
    refused(users["dave"], request)
    refused(users["alice"], request)

    # Unless the environment allows self-approval.
    WorkflowEnvironment.objects.filter(workflow=workflow).update(allow_self_approval=True)
    approved_and_deployed(users["alice"], request)


def test_a_rollback_and_an_api_run_of_the_pushed_commit(pushed, users, gina):
    workflow, dev = pushed["workflow"], pushed["dev"]
    answer = deliver(pushed["hook"], "github", push_of(pushed, "dave"))
    first, request = gated_run(answer.json()["runs"][0]["id"])
    refused(users["dave"], request)
    approved_and_deployed(gina, request)
    release = Release.objects.get(execution=first)
    assert release.commit_sha == pushed["sha"]

    # alice runs the same commit through the API (a new release of the same code).
    started = client_for(users["alice"]).post(
        f"/api/workflows/{workflow.pk}/run/",
        {"branch": "main", "commit": pushed["sha"]},
        format="json",
    )
    assert started.status_code == 201, started.content
    api_run, request = gated_run(started.json()["id"])
    assert (api_run.commit_sha, api_run.actor_login) == (pushed["sha"], "")
    refused(users["dave"], request)  # pushed the commit
    refused(users["alice"], request)  # started the run
    approved_and_deployed(gina, request)
    assert Release.objects.filter(workflow=workflow, environment=dev).count() == 2

    # alice rolls dev back to the first release of that commit.
    rolled = client_for(users["alice"]).post(f"/api/releases/{release.pk}/rollback/")
    assert rolled.status_code == 201, rolled.content
    rollback, request = gated_run(rolled.json()["id"])
    assert rollback.trigger == "rollback"
    refused(users["dave"], request)
    refused(users["alice"], request)
    approved_and_deployed(gina, request)
