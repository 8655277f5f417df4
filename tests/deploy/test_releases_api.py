"""Release history, what runs where and rollback through the API and the page: who may read
(view workflow, project members), who may roll back (change workflow), and that a rollback is a
new run of trigger "rollback" that redeploys the digest through the same gates. Deploys go to
the Kubernetes API double (tests/k8s_double)."""

from __future__ import annotations

import pytest
from django.test import Client

from executions.models import Execution, Release
from executions.status import ExecutionStatus as S
from tests.base import client_for
from tests.deploy import deploy_only, run, start_deploy
from workflows.models import WorkflowEnvironment

pytestmark = pytest.mark.django_db(transaction=True)

V1 = "127.0.0.1:5000/demo/web:v1", "sha256:" + "1" * 64
V2 = "127.0.0.1:5000/demo/web:v2", "sha256:" + "2" * 64


@pytest.fixture
def released(service, k8s_envs, users, settings):
    """dev runs v2 (release two) after v1 (release one); staging runs v1."""
    settings.DEPLOY_POLL_SECONDS = 0.05
    workflow = deploy_only(service, V1[0], port=8080, envs=("dev", "staging"))
    one = run(start_deploy(workflow, k8s_envs["dev"], *V1, commit="a" * 40, user=users["bob"]))
    two = run(start_deploy(workflow, k8s_envs["dev"], *V2, commit="b" * 40))
    staged = run(start_deploy(workflow, k8s_envs["staging"], *V1, commit="a" * 40))
    assert [e.status for e in (one, two, staged)] == [S.SUCCEEDED] * 3
    return {
        "workflow": workflow,
        "one": Release.objects.get(execution=one),
        "two": Release.objects.get(execution=two),
        "staged": Release.objects.get(execution=staged),
    }


def test_history_and_what_runs_where(released, service, users, k8s_envs):
    carol = client_for(users["carol"])  # a viewer
    history = carol.get(f"/api/releases/?service={service.pk}").json()["results"]
    one, two, staged = released["one"], released["two"], released["staged"]
    assert [r["id"] for r in history] == [staged.pk, two.pk, one.pk]
    first = history[-1]
    assert (first["environment_name"], first["commit_sha"], first["image_digest"]) == (
        "dev",
        "a" * 40,
        V1[1],
    )
    assert (first["deployed_by"], first["execution_number"], first["version"]) == (
        "bob",
        one.execution.number,
        "a" * 12,
    )
    dev_only = carol.get(f"/api/releases/?environment={k8s_envs['dev'].pk}").json()["results"]
    assert [r["id"] for r in dev_only] == [two.pk, one.pk]

    where = carol.get(f"/api/releases/what-runs-where/?service={service.pk}").json()
    assert [(w["environment"], [r["id"] for r in w["releases"]]) for w in where["where"]] == [
        ("dev", [two.pk]),
        ("staging", [staged.pk]),
        ("prod", []),
    ]
    assert carol.get("/api/releases/what-runs-where/").status_code == 400


def test_members_only_and_change_permission_to_roll_back(released, service, users):
    one = released["one"]
    erin = client_for(users["erin"])  # an admin of no project of hers
    assert erin.get(f"/api/releases/?service={service.pk}").json()["results"] == []
    assert erin.get(f"/api/releases/what-runs-where/?service={service.pk}").status_code == 404
    assert erin.post(f"/api/releases/{one.pk}/rollback/").status_code == 404
    carol = client_for(users["carol"])
    response = carol.post(f"/api/releases/{one.pk}/rollback/")
    assert response.status_code == 403
    assert "Change workflow" in response.json()["detail"]
    assert client_for(users["frank"]).get("/api/releases/").status_code == 403
    assert client_for(None).get("/api/releases/").status_code in (401, 403)
    assert not Execution.objects.filter(trigger="rollback").exists()


def test_rollback_is_a_new_run_redeploying_the_digest(released, users, double, k8s_envs):
    one, two = released["one"], released["two"]
    bob = client_for(users["bob"])
    current = bob.post(f"/api/releases/{two.pk}/rollback/")
    assert current.status_code == 409
    assert current.json()["detail"] == f"dev runs release #{two.pk} already."

    response = bob.post(f"/api/releases/{one.pk}/rollback/")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["trigger"], body["trigger_detail"]) == (
        "rollback",
        f"rollback of dev to release #{one.pk}",
    )
    assert [s["name"] for s in body["stages"]] == ["Deploy dev"]
    execution = run(Execution.objects.get(pk=body["id"]))
    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert (execution.image_digest, execution.commit_sha) == (V1[1], "a" * 40)
    release = Release.objects.get(execution=execution)
    assert (release.is_rollback, release.rollback_of, release.image_digest) == (True, one, V1[1])
    assert release.deployed_by == users["bob"]
    name = f"{released['workflow'].service.name}-release"
    image = double.get("Deployment", "dev", name)["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == f"127.0.0.1:5000/demo/web@{V1[1]}"


def test_rollback_goes_through_the_same_gates(released, users, k8s_envs):
    WorkflowEnvironment.objects.filter(
        workflow=released["workflow"], environment=k8s_envs["dev"]
    ).update(mode="manual")
    response = client_for(users["bob"]).post(f"/api/releases/{released['one'].pk}/rollback/")
    assert response.status_code == 201
    execution = run(Execution.objects.get(pk=response.json()["id"]))
    assert execution.status == S.DEPLOYMENT_PENDING
    assert not Release.objects.filter(execution=execution).exists()


def test_rollback_refused_to_an_inactive_environment(released, users, k8s_envs):
    k8s_envs["dev"].is_active = False
    k8s_envs["dev"].save()
    response = client_for(users["bob"]).post(f"/api/releases/{released['one'].pk}/rollback/")
    assert response.status_code == 409
    assert response.json()["detail"] == 'Environment "dev" is inactive.'


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_shows_what_runs_where_and_rolls_back(released, service, users):
    url = f"/services/{service.pk}/where/"
    page = page_client(users["carol"]).get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert f"#{released['two'].pk}" in text and "bbbbbbbbbbbb" in text
    assert "Roll back dev to" not in text  # a viewer gets no buttons
    assert page_client(users["erin"]).get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to the login page

    bob = page_client(users["bob"])
    assert "Roll back dev to" in bob.get(url).content.decode()
    response = bob.post(url, {"release": released["one"].pk})
    assert response.status_code == 302
    assert Execution.objects.filter(trigger="rollback").count() == 1
    assert "Rollback started" in bob.get(url).content.decode()
