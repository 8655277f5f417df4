"""The deploy stage refuses an image built for none of the target's architectures (issue 17):
the Kubernetes target reads its nodes' architectures (from the API double, tests/k8s_double,
not a real cluster), the local target knows its engine's; the image's architectures come from
the registry here (deploy-only runs), from the run's own push in test_build_options."""

from __future__ import annotations

import pytest

from executions.status import ExecutionStatus as S
from tests import base
from tests.deploy import deploy_only, log_text, run, start_deploy

pytest_plugins = ["tests.realparts"]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


@pytest.fixture
def arm64_image(images):
    return images.arm64()


def workflow_for(service, project, image: str, envs):
    workflow = deploy_only(service, image, port=8080, envs=envs)
    workflow.registry = base.make_registry(project, name="open", url="127.0.0.1:5000")
    workflow.save()
    return workflow


def test_kubernetes_refuses_an_arm64_image_on_amd64_nodes(
    service, project, k8s_envs, double, arm64_image
):
    workflow = workflow_for(service, project, arm64_image[0], ("dev",))
    execution = run(start_deploy(workflow, k8s_envs["dev"], *arm64_image))
    assert execution.status == S.FAILED
    assert execution.status_reason == (
        f"Deploy dev: image {arm64_image[0]} is built for arm64, but dev runs amd64 "
        f"(Kubernetes at {double.url}, namespace dev): set the workflow's build platform to "
        "include linux/amd64"
    )
    assert not double.applies()  # nothing reached the cluster


def test_kubernetes_takes_it_when_some_nodes_are_arm64(
    service, project, k8s_envs, double, arm64_image
):
    double.nodes = {"node-1": "amd64", "node-2": "arm64"}
    workflow = workflow_for(service, project, arm64_image[0], ("dev",))
    execution = run(start_deploy(workflow, k8s_envs["dev"], *arm64_image))
    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert "Image architectures arm64; dev runs amd64, arm64 (no image for its amd64 nodes)" in (
        log_text(execution)
    )


def test_nodes_hidden_from_the_deployer_are_not_checked(
    service, project, k8s_envs, double, arm64_image
):
    double.nodes_forbidden = True
    workflow = workflow_for(service, project, arm64_image[0], ("dev",))
    execution = run(start_deploy(workflow, k8s_envs["dev"], *arm64_image))
    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert "Architecture not checked: Kubernetes refused to list nodes: nodes is forbidden" in (
        log_text(execution)
    )


def test_the_local_target_refuses_an_image_not_built_for_this_machine(
    local, service, project, local_envs, arm64_image
):
    workflow = workflow_for(service, project, arm64_image[0], ("dev",))
    execution = run(start_deploy(workflow, local_envs["dev"], *arm64_image))
    assert execution.status == S.FAILED
    assert execution.status_reason.startswith(
        f"Deploy dev: image {arm64_image[0]} is built for arm64, but dev runs amd64 "
        "(the local engine (podman at unix://"
    ), execution.status_reason
