"""The Kubernetes target through the engine, against the Kubernetes API double (tests/k8s_double,
NOT a real cluster: none can be installed on this machine kind). Server-side apply with the
field manager, the rollout waited for, pull and crash failures with the cluster's reason,
automatic rollback, forbidden namespace, unreachable cluster, unusable kubeconfig, terminate."""

from __future__ import annotations

import base64
import json

import pytest
from rest_framework.exceptions import ValidationError

from executions.models import Release
from executions.services import do_terminate
from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from tests import base
from tests.deploy import deploy_only, log_text, run, run_in_thread, start_deploy, wait_for
from workflows.models import CIVariable, WorkflowEnvironment

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = "127.0.0.1:5000/demo/web:v1", "sha256:" + "1" * 64
NEWER = "127.0.0.1:5000/demo/web:v2", "sha256:" + "2" * 64
MISSING = "127.0.0.1:5000/demo/missing:v3", "sha256:" + "3" * 64
CRASHING = "127.0.0.1:5000/demo/crash:v4", "sha256:" + "4" * 64


@pytest.fixture(autouse=True)
def fast(settings):
    settings.DEPLOY_POLL_SECONDS = 0.05


@pytest.fixture
def app(service, k8s_envs, project):
    registry = base.make_registry(
        project, name="private", url="127.0.0.1:5000", username="robot", password="pull-pw-77"
    )
    workflow = deploy_only(
        service,
        GOOD[0],
        port=8080,
        envs=("dev", "staging", "prod"),
        replicas=2,
        health_check_path="/healthz",
        resources={"cpu_request": "50m", "memory_limit": "64Mi"},
    )
    workflow.registry = registry
    workflow.save()
    CIVariable.objects.create(workflow=workflow, key="API_URL", value="https://x", scope="runtime")
    CIVariable.objects.create(
        workflow=workflow,
        key="DB_PASSWORD",
        secret_value="db-pw-4242",
        is_secret=True,
        scope="runtime",
    )
    return workflow


def deploy(workflow, env, image, commit="", user=None):
    return run(start_deploy(workflow, env, image[0], image[1], commit, user))


def test_server_side_apply_then_rollout(app, k8s_envs, double, users):
    execution = deploy(app, k8s_envs["dev"], GOOD, commit="a" * 40, user=users["bob"])
    assert execution.status == S.SUCCEEDED, execution.status_reason

    applies = double.applies()
    name = app.service.name + "-release"
    assert [r["path"].rsplit("/", 2)[-2:] for r in applies] == [
        ["secrets", f"{name}-pull"],
        ["secrets", f"{name}-env"],
        ["services", name],
        ["deployments", name],
    ]
    for request in applies:
        assert request["content_type"] == "application/apply-patch+yaml"
        assert request["query"]["fieldManager"] == ["workflows"]
        assert request["query"]["force"] == ["true"]

    deployment = double.get("Deployment", "dev", name)
    assert deployment["metadata"]["managedFields"][0]["manager"] == "workflows"
    assert deployment["status"]["observedGeneration"] == 1
    assert deployment["status"]["availableReplicas"] == 2
    labels = deployment["metadata"]["labels"]
    assert labels["workflows.atmosly.io/environment"] == "dev"
    assert labels["workflows.atmosly.io/execution"] == str(execution.pk)
    assert labels["workflows.atmosly.io/commit"] == "a" * 40
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"127.0.0.1:5000/demo/web@{GOOD[1]}"
    assert "db-pw-4242" not in json.dumps(deployment)
    secret = double.get("Secret", "dev", f"{name}-env")
    assert base64.b64decode(secret["data"]["DB_PASSWORD"]).decode() == "db-pw-4242"
    pull = double.get("Secret", "dev", f"{name}-pull")
    assert pull["type"] == "kubernetes.io/dockerconfigjson"

    release = Release.objects.get(execution=execution)
    assert (release.environment, release.image_digest, release.deployed_by) == (
        k8s_envs["dev"],
        GOOD[1],
        users["bob"],
    )
    assert release.target == "kubernetes" and release.details["namespace"] == "dev"
    log = log_text(execution)
    assert f"Rollout of Deployment/{name} complete: 2 of 2 replicas available" in log
    assert "db-pw-4242" not in log

    again = deploy(app, k8s_envs["dev"], NEWER, commit="b" * 40)
    assert again.status == S.SUCCEEDED, again.status_reason
    assert double.get("Deployment", "dev", name)["metadata"]["generation"] == 2


def test_image_pull_backoff_fails_with_the_reason_and_rolls_back(app, k8s_envs, double):
    first = deploy(app, k8s_envs["dev"], GOOD)
    assert first.status == S.SUCCEEDED, first.status_reason
    broken = deploy(app, k8s_envs["dev"], MISSING)

    assert broken.status == S.FAILED
    stage = broken.stages.get()
    assert stage.status == StageStatus.FAILED
    assert "ImagePullBackOff: Back-off pulling image" in stage.error
    assert "demo/missing@" in stage.error
    previous = Release.objects.get(execution=first)
    assert f"rolled back to release #{previous.pk}" in stage.error
    rollback = Release.objects.get(execution=broken)
    assert rollback.is_rollback and rollback.rollback_of == previous
    assert rollback.image_digest == GOOD[1]
    deployment = double.get("Deployment", "dev", app.service.name + "-release")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(GOOD[1])
    assert deployment["metadata"]["generation"] == 3  # good, missing, good again


def test_crash_loop_without_automatic_rollback(app, k8s_envs, double):
    WorkflowEnvironment.objects.filter(workflow=app).update(auto_rollback=False)
    assert deploy(app, k8s_envs["dev"], GOOD).status == S.SUCCEEDED
    crashed = deploy(app, k8s_envs["dev"], CRASHING)
    assert crashed.status == S.FAILED
    assert "CrashLoopBackOff: back-off" in crashed.status_reason
    assert "automatic rollback is off for dev" in crashed.status_reason
    assert not Release.objects.filter(execution=crashed).exists()


def test_first_release_failing_has_nothing_to_roll_back_to(app, k8s_envs):
    failed = deploy(app, k8s_envs["dev"], MISSING)
    assert failed.status == S.FAILED
    assert "there is no earlier release to roll back to" in failed.status_reason


def test_forbidden_namespace_fails_with_the_api_message(app, k8s_envs):
    execution = deploy(app, k8s_envs["prod"], GOOD)
    assert execution.status == S.FAILED
    assert execution.status_reason == (
        f"Deploy prod: Kubernetes refused to apply Secret/{app.service.name}-release-pull in "
        f'namespace prod: secrets "{app.service.name}-release-pull" is forbidden: User '
        '"system:serviceaccount:workflows:deployer" cannot patch resource "secrets" in API '
        'group "" in the namespace "prod"'
    )


def test_unreachable_cluster_is_an_error_naming_the_address(app, k8s_envs, double):
    dev = k8s_envs["dev"]
    dev.kubeconfig = double.kubeconfig().replace(double.url, "http://127.0.0.1:9")
    dev.save()
    execution = deploy(app, dev, GOOD)
    assert execution.status == S.ERROR
    assert "cannot reach the Kubernetes API at http://127.0.0.1:9" in execution.status_reason
    assert "Connection refused" in execution.status_reason


def test_unusable_credentials_fail_with_the_reason(app, k8s_envs, double):
    dev = k8s_envs["dev"]
    dev.kubeconfig = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n"
    dev.save()
    execution = deploy(app, dev, GOOD)
    assert execution.status == S.FAILED
    assert "the kubeconfig of environment dev cannot be used" in execution.status_reason

    dev.kubeconfig, dev.in_cluster = "", True
    dev.save()
    execution = deploy(app, dev, GOOD)
    assert execution.status == S.FAILED
    assert "the in-cluster credentials of environment dev cannot be used" in (
        execution.status_reason
    )

    dev.kubeconfig, dev.in_cluster = double.kubeconfig(token="wrong-token"), False
    dev.save()
    execution = deploy(app, dev, GOOD)
    assert execution.status == S.FAILED
    assert "Kubernetes refused to apply" in execution.status_reason
    assert execution.status_reason.endswith(": Unauthorized")


def test_inactive_environment_is_refused_at_run_time(app, k8s_envs):
    pending = start_deploy(app, k8s_envs["dev"], *GOOD)
    k8s_envs["dev"].is_active = False
    k8s_envs["dev"].save()
    execution = run(pending)
    assert execution.status == S.FAILED
    assert execution.status_reason == (
        "Deploy dev: environment dev is inactive: activate it to deploy there"
    )


def test_worker_and_cron_objects(service, k8s_envs, double):
    worker = deploy_only(service, GOOD[0], ptype="worker_cd", envs=("dev",), replicas=3)
    assert deploy(worker, k8s_envs["dev"], GOOD).status == S.SUCCEEDED
    assert double.get("Deployment", "dev", f"{service.name}-release")["spec"]["replicas"] == 3
    assert double.get("Service", "dev", f"{service.name}-release") is None

    cron = base.save_document(
        service,
        {
            "name": "nightly",
            "pipeline_type": "cron_cd",
            "source": {"kind": "image", "image": GOOD[0]},
            "deploy": {
                "cron_schedule": "30 2 * * *",
                "cron_concurrency": "Forbid",
                "environments": [{"environment": "dev"}],
            },
        },
    )
    assert deploy(cron, k8s_envs["dev"], GOOD).status == S.SUCCEEDED
    job = double.get("CronJob", "dev", f"{service.name}-nightly")
    assert (job["spec"]["schedule"], job["spec"]["concurrencyPolicy"]) == ("30 2 * * *", "Forbid")


def test_terminate_during_the_rollout_puts_the_previous_release_back(app, k8s_envs, double):
    first = deploy(app, k8s_envs["dev"], GOOD)
    assert first.status == S.SUCCEEDED
    previous = Release.objects.get(execution=first)
    double.rollout_delay = 60  # the controller will not get to it while we wait
    execution = start_deploy(app, k8s_envs["dev"], *NEWER)
    thread = run_in_thread(execution.pk)
    name = app.service.name + "-release"
    wait_for(
        lambda: double.get("Deployment", "dev", name)["metadata"]["generation"] == 2,
        10,
        "the new generation applied",
    )
    do_terminate(execution)
    thread.join(20)
    execution.refresh_from_db()
    assert execution.status == S.TERMINATED
    where = f"dev is back on release #{previous.pk} ({GOOD[1][7:19]})"
    assert execution.status_reason == f"Terminated during Deploy dev: {where}"
    assert execution.stages.get().error == where
    assert f"Terminated: {where}" in log_text(execution)
    deployment = double.get("Deployment", "dev", name)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(GOOD[1])
    assert not Release.objects.filter(execution=execution).exists()


def test_invalid_cron_schedule_is_refused_at_save(service, k8s_envs):
    doc = {
        "name": "nightly",
        "pipeline_type": "cron_cd",
        "source": {"kind": "image", "image": GOOD[0]},
        "deploy": {"cron_schedule": "61 * * * *", "environments": [{"environment": "dev"}]},
    }
    with pytest.raises(ValidationError, match="not a valid cron schedule"):
        base.save_document(service, doc)
