"""The Kubernetes builder end to end against the Kubernetes API double (tests/k8s_double: NOT a
cluster), which plays the build pod on podman (tests/k8s_double/kubelet.py).

No Buildah, BuildKit or git image can be pulled on this machine kind (no public registry), so a
busybox image STANDS IN for both: its `git` asks the askpass helper for the credentials and
writes a Dockerfile instead of cloning; its `buildah` prints its arguments, checks the registry
credentials file and writes a digest instead of building and pushing. What is real: the pod and
Secret built from the official client's models and validated against the Kubernetes schemas,
the Secret's lifetime, env and mounts, the pod run with its command, the log streamed into the
stage log, the outcome read from the pod's status, the retry after a spot interruption and the
deletion on terminate."""

from __future__ import annotations

import re
import time

import kubernetes_validate
import pytest

from executions.services import do_terminate
from executions.status import ExecutionStatus as S
from integrations.kubernetes.builder import BuildPod
from tests.executions import log_text, make_git_workflow, run_in_thread, run_now, start_run
from tests.k8s_double import KubernetesDouble
from tests.realparts import BASE_IMAGE, sample_app_files, tar_context
from workflows.models import CIVariable, Environment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]
STANDIN = "localhost/workflows-tests/k8s-builder-standin:1"
GIT = r"""#!/bin/sh
# STAND-IN for git (tests only): no clone, a Dockerfile; the credentials come from askpass.
if [ "$1" = clone ]; then
  user=$("$GIT_ASKPASS" "Username for $4"); pass=$("$GIT_ASKPASS" "Password for $4")
  [ -n "$pass" ] || { echo "stand-in git: no password from askpass"; exit 1; }
  mkdir -p "$5" && echo "FROM localhost/busybox:latest" > "$5/Dockerfile"
  echo "stand-in git: clone as $user, password of ${#pass} characters"
else
  echo "stand-in git: $*"
fi
"""
BUILDAH = r"""#!/bin/sh
# STAND-IN for buildah (tests only): prints its arguments, checks the registry credentials.
echo "stand-in buildah: $*"
[ -n "$STANDIN_SLEEP" ] && sleep "$STANDIN_SLEEP"
case " $* " in *" --cache-to "*) [ -z "$STANDIN_CACHE_REFUSED" ] || {
  echo "Error: failed pushing cache to $STANDIN_CACHE_REFUSED: unauthorized"; exit 125; } ;; esac
case " $* " in *" -f "*) [ -f "$WORKFLOWS_DOCKERFILE" ] || { echo "no Dockerfile"; exit 1; } ;; esac
case " $* " in
  *" push "*|*" manifest push "*)
    grep -q '"auths"' "$REGISTRY_AUTH_FILE" || { echo "no registry credentials file"; exit 1; }
    echo "sha256:$(echo "$*" | sha256sum | cut -c1-64)" > /tmp/digest ;;
esac
"""


@pytest.fixture(scope="module")
def standin(real_services, docker_client):
    files = {
        "Dockerfile": f"FROM {BASE_IMAGE}\nCOPY git buildah /usr/local/bin/\n"
        "RUN chmod 755 /usr/local/bin/git /usr/local/bin/buildah && mkdir -p /tmp "
        "&& chmod 1777 /tmp\n",
        "git": GIT,
        "buildah": BUILDAH,
    }
    for chunk in docker_client.api.build(
        fileobj=tar_context(files), custom_context=True, tag=STANDIN, decode=True, pull=False
    ):
        assert "error" not in chunk, chunk
    return STANDIN


@pytest.fixture
def double(real_services):
    with KubernetesDouble(namespaces=("builds",), docker_host=real_services["DOCKER_HOST"]) as d:
        yield d


@pytest.fixture
def k8s_workflow(engine, settings, standin, double, project, registry, git_server):
    settings.DEPLOY_POLL_SECONDS = 0.1
    settings.KUBERNETES_BUILDER_IMAGE = standin
    settings.KUBERNETES_BUILDER_GIT_IMAGE = standin
    env = Environment.objects.create(
        project=project,
        name="builds",
        namespace="builds",
        target="kubernetes",
        kubeconfig=double.kubeconfig(namespace="builds"),
    )
    workflow, _ = make_git_workflow(
        project,
        git_server,
        sample_app_files(),
        registry,
        builder="kubernetes",
        builder_environment=env,
        platform="linux/arm64",
        spot_instances=True,
        volume_size_gb=7,
    )
    return workflow


def nothing_left(double) -> bool:
    with double.lock:
        kinds = {key[0] for key in double.objects}
    containers = double.kubelet.engine.containers.list(all=True, filters={"name": "k8sdouble-"})
    return "pods" not in kinds and "secrets" not in kinds and not containers


def test_the_build_runs_as_a_pod_and_pushes_from_it(k8s_workflow, double, git_server):
    execution = run_now(k8s_workflow)
    assert execution.status == S.SUCCEEDED, log_text(execution)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", execution.image_digest)
    log = log_text(execution)
    assert f"stand-in git: clone as {git_server.user}, password of" in log
    assert git_server.password not in log
    assert "--platform linux/arm64" in log and "--layers" in log
    assert f"docker://{execution.image}" in log
    # The registry layer cache: a fresh pod has no layers of its own.
    cache = execution.image.rsplit(":", 1)[0] + "-cache"
    assert f"--cache-from {cache} --cache-to {cache}" in log
    assert "The Kubernetes build pod pushed" in log
    applied = [r["path"].rsplit("/", 2)[-2:] for r in double.applies()]
    assert applied[:2] == [
        ["secrets", f"{applied[1][1]}-credentials"],
        ["pods", applied[1][1]],
    ]
    assert nothing_left(double)  # Secret and pod deleted when the stage ended


def test_caching_off_neither_reads_nor_writes_a_cache_in_the_pod(k8s_workflow):
    k8s_workflow.cache_enabled = False
    k8s_workflow.save()
    execution = run_now(k8s_workflow)
    assert execution.status == S.SUCCEEDED, log_text(execution)
    log = log_text(execution)
    assert "--no-cache" in log
    assert "--cache-from" not in log and "--cache-to" not in log and "--layers" not in log


def test_a_cache_repository_the_registry_refuses_does_not_fail_the_pod_build(k8s_workflow):
    CIVariable.objects.create(
        workflow=k8s_workflow, key="STANDIN_CACHE_REFUSED", value="yes", scope="build"
    )
    execution = run_now(k8s_workflow)
    assert execution.status == S.SUCCEEDED, log_text(execution)
    log = log_text(execution)
    assert "failed pushing cache" in log
    assert "Registry layer cache not used" in log and "building again without it" in log
    # The second build ran without the cache options.
    last = [line for line in log.splitlines() if "stand-in buildah:" in line and " build " in line]
    assert "--cache-to" in last[0] and "--cache-to" not in last[-1], last


def wait_for_build(double, suffix: str) -> str:
    """The name of the build pod ending in `suffix` (the attempt), once its build runs."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with double.lock:
            pods = [p for k, p in double.objects.items() if k[0] == "pods"]
        for pod in pods:
            statuses = pod.get("status", {}).get("containerStatuses", [])
            name = pod["metadata"]["name"]
            if name.endswith(suffix) and any("running" in s["state"] for s in statuses):
                return name
        time.sleep(0.1)
    raise AssertionError(f"no build pod ending in {suffix} ran its build container")


def test_a_pod_lost_to_a_spot_interruption_is_built_again_once(k8s_workflow, double):
    CIVariable.objects.create(workflow=k8s_workflow, key="STANDIN_SLEEP", value="3", scope="build")
    execution = start_run(k8s_workflow)
    thread = run_in_thread(execution.pk)
    first = wait_for_build(double, "-1")
    double.kubelet.interrupt("builds", first)
    thread.join(120)
    execution.refresh_from_db()
    assert execution.status == S.SUCCEEDED, execution.status_reason
    log = log_text(execution)
    assert f"the build pod {first} was lost (Pod was terminated in response to imminent" in log
    assert "building again in a new pod (once)" in log
    assert nothing_left(double)


def test_terminate_deletes_the_build_pod(k8s_workflow, double):
    CIVariable.objects.create(workflow=k8s_workflow, key="STANDIN_SLEEP", value="60", scope="build")
    execution = start_run(k8s_workflow)
    thread = run_in_thread(execution.pk)
    wait_for_build(double, "-1")
    do_terminate(execution)
    thread.join(60)
    execution.refresh_from_db()
    assert execution.status == S.TERMINATED, execution.status_reason
    assert nothing_left(double)


def pod_for(**changes) -> BuildPod:
    values = dict(
        name="workflows-build-1-2-1",
        namespace="builds",
        labels={"workflows.atmosly.io/execution": "1"},
        repo_url="https://git.example.com/team/app.git",
        public_repo_url="https://git.example.com/team/app.git",
        commit="a" * 40,
        context=".",
        dockerfile="Dockerfile",
        destinations=["registry.example.com/team/app:" + "a" * 40],
        platforms=["linux/arm64"],
        cache=True,
        spot=True,
        volume_size_gb=30,
        git_image="docker.io/alpine/git:2.47.2",
        spot_labels=["eks.amazonaws.com/capacityType=SPOT", "cloud.google.com/gke-spot=true"],
        git_password="token-123",
        registry_host="registry.example.com",
        registry_auth={"username": "u", "password": "registry-pw-9"},
        build_args={"NPM_TOKEN": "npm-secret-1"},
    )
    values.update(changes)
    return BuildPod(**values)


@pytest.mark.parametrize("tool", ["buildah", "buildkit"])
def test_the_pod_and_secret_pass_the_kubernetes_schemas(tool):
    spec = pod_for(tool=tool)
    pod, secret = spec.pod(), spec.secret()
    for obj in (pod, secret):
        kubernetes_validate.validate(obj, "1.37.0", strict=True)
    text = str(pod)
    assert "token-123" not in text and "registry-pw-9" not in text and "npm-secret-1" not in text
    podspec = pod["spec"]
    assert podspec["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    terms = podspec["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert [t["preference"]["matchExpressions"][0]["key"] for t in terms] == [
        "eks.amazonaws.com/capacityType",
        "cloud.google.com/gke-spot",
    ]
    assert {(t["key"], t["value"]) for t in podspec["tolerations"]} == {
        ("eks.amazonaws.com/capacityType", "SPOT"),
        ("cloud.google.com/gke-spot", "true"),
    }
    layers = next(v for v in podspec["volumes"] if v["name"] == "layers")
    claim = layers["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"] == {"storage": "30Gi"}
    mount = next(m for m in podspec["containers"][0]["volumeMounts"] if m["name"] == "layers")
    assert mount["mountPath"].endswith("/buildkit" if tool == "buildkit" else "/containers")


def test_no_spot_and_multi_arch_mean_no_placement():
    podspec = pod_for(spot=False, platforms=["linux/amd64", "linux/arm64"]).pod()["spec"]
    assert "nodeSelector" not in podspec
    assert "affinity" not in podspec and "tolerations" not in podspec
