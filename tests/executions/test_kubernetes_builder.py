"""The Kubernetes builder end to end against the Kubernetes API double (tests/k8s_double: NOT a
cluster), which plays the build pod on podman (tests/k8s_double/kubelet.py: same image, command,
env, mounts and security context, on the host's network).

The pod runs the real thing: Debian's git clones the commit in the init container and Debian's
Buildah builds rootless (uid 1000, vfs, chroot isolation) and pushes to the real registries, the
open one and the htpasswd one (through the docker config Secret). Both images are
`localhost/workflows-buildah:bookworm` (tests/builder_image.py), made once per engine from
Debian packages: no public registry is reachable here. The pushed image is pulled back and run.
The spot-interruption retry and terminate run the real builder too, on a Dockerfile whose RUN
step sleeps. BuildKit is not run (Debian has no BuildKit binary): its pod spec is checked
against the Kubernetes schemas below, and its script with a recording stand-in for buildctl in
test_buildkit_script.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import kubernetes_validate
import pytest
import requests
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from executions.services import do_terminate
from executions.status import ExecutionStatus as S
from tests import base
from tests.builder_image import ensure_builder_image
from tests.executions import (
    log_text,
    make_git_workflow,
    pod_for,
    run_in_thread,
    run_now,
    start_run,
)
from tests.k8s_double import KubernetesDouble
from tests.realparts import unique_name
from workflows.models import Environment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]
# The services' busybox per architecture, pushed where the pod can pull it.
BASE = "127.0.0.1:5000/workflows-tests/k8s-builder-base"


@pytest.fixture(scope="session")
def builder_image(real_services):
    started = time.monotonic()
    image = ensure_builder_image(real_services["DOCKER_HOST"])
    sys.stderr.write(f"\n[k8s builder] {image} ready in {time.monotonic() - started:.1f} s\n")
    return image


@pytest.fixture(scope="module")
def base_image(real_services):
    """BASE:amd64, BASE:arm64 and BASE:multi (a manifest list of both) in the open registry."""
    podman = ["podman", "--remote", "--url", real_services["DOCKER_HOST"]]
    for arch, local in (
        ("amd64", "localhost/busybox:latest"),
        ("arm64", "localhost/busybox:arm64"),
    ):
        subprocess.run(
            [*podman, "push", "--tls-verify=false", local, f"docker://{BASE}:{arch}"],
            check=True,
            capture_output=True,
        )
    listed = unique_name("k8s-builder-base-list")
    subprocess.run([*podman, "manifest", "create", listed], check=True, capture_output=True)
    try:
        for arch in ("amd64", "arm64"):
            subprocess.run(
                [
                    *podman,
                    "manifest",
                    "add",
                    "--tls-verify=false",
                    listed,
                    f"docker://{BASE}:{arch}",
                ],
                check=True,
                capture_output=True,
            )
        subprocess.run(
            [
                *podman,
                "manifest",
                "push",
                "--all",
                "--tls-verify=false",
                listed,
                f"docker://{BASE}:multi",
            ],
            check=True,
            capture_output=True,
        )
    finally:
        subprocess.run([*podman, "manifest", "rm", listed], capture_output=True)
    return BASE


@pytest.fixture
def double(real_services):
    with KubernetesDouble(namespaces=("builds",), docker_host=real_services["DOCKER_HOST"]) as d:
        yield d


@pytest.fixture
def k8s_workflow(engine, settings, builder_image, base_image, double, project, git_server):
    """make(dockerfile_lines, registry=None, **workflow fields): a workflow building in the
    double's `builds` namespace with the real builder image; (workflow, marker)."""
    settings.DEPLOY_POLL_SECONDS = 0.1
    settings.KUBERNETES_BUILDER_TOOL = "buildah"
    settings.KUBERNETES_BUILDER_IMAGE = builder_image
    settings.KUBERNETES_BUILDER_GIT_IMAGE = builder_image
    env = Environment.objects.create(
        project=project,
        name="builds",
        namespace="builds",
        target="kubernetes",
        kubeconfig=double.kubeconfig(namespace="builds"),
    )

    def make(steps: str = "", registry=None, **fields):
        marker = unique_name("pod-built")
        platform = fields.get("platform", "linux/amd64")
        arch = "multi" if "," in platform else platform.rpartition("/")[2]
        files = {
            "Dockerfile": f"FROM {base_image}:{arch}\n{steps}"
            f'RUN echo "{marker} on $(uname -m)" > /built\n'
            "COPY index.html /www/index.html\n"
            # One line: podman's compat API may hand the SDK the first line only at exit.
            'CMD ["sh", "-c", "echo $(cat /built /www/index.html)"]\n',
            "index.html": "<p>served by the pod-built image</p>\n",
        }
        workflow, _ = make_git_workflow(
            project,
            git_server,
            files,
            registry or base.make_registry(project),
            builder="kubernetes",
            builder_environment=env,
            **{"platform": "linux/amd64", "spot_instances": True, "volume_size_gb": 7, **fields},
        )
        return workflow, marker

    return make


def nothing_left(double) -> bool:
    """No pod or Secret in the double, no podman container of a pod it was given (other
    sessions play their own pods on the same engine)."""
    with double.lock:
        kinds = {key[0] for key in double.objects}
    pods = {r["path"].rsplit("/", 1)[1] for r in double.applies() if "/pods/" in r["path"]}
    engine = double.kubelet.engine
    containers = [
        c for pod in pods for c in engine.containers.list(all=True, filters={"name": pod})
    ]
    return "pods" not in kinds and "secrets" not in kinds and not containers


def pull_and_run(
    docker_client, image: str, auth: dict | None = None, platform: str | None = None
) -> tuple[str, str]:
    """The pushed image pulled back from its registry and run: (its output, its architecture)."""
    repository, _, tag = image.rpartition(":")
    docker_client.images.pull(repository, tag=tag, auth_config=auth, platform=platform)
    try:
        output = docker_client.containers.run(image, remove=True).decode()
        return output, docker_client.images.get(image).attrs["Architecture"]
    finally:
        docker_client.images.remove(image, force=True)


def test_the_pod_clones_builds_and_pushes_a_runnable_image(
    k8s_workflow, double, git_server, docker_client
):
    workflow, marker = k8s_workflow()
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, log_text(execution)
    log = log_text(execution)
    assert f"Cloned {workflow.service.repo_url} at {execution.commit_sha}" in log  # real git
    assert "STEP 2/4: RUN echo" in log and "Writing manifest to image destination" in log
    assert f"Pushed {execution.image}" in log
    assert git_server.password not in log
    # The run's digest is the registry's: the manifest buildah pushed.
    host, _, path = execution.image.partition("/")
    repository, _, tag = path.rpartition(":")
    answer = requests.head(
        f"http://{host}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    assert answer.headers["Docker-Content-Digest"] == execution.image_digest
    output, architecture = pull_and_run(docker_client, execution.image)
    assert f"{marker} on x86_64 <p>served by the pod-built image</p>" in output, output
    assert architecture == "amd64"
    applied = [r["path"].rsplit("/", 2)[-2:] for r in double.applies()]
    assert applied[:2] == [
        ["secrets", f"{applied[1][1]}-credentials"],
        ["pods", applied[1][1]],
    ]
    assert nothing_left(double)  # Secret and pod deleted when the stage ended


def test_the_pod_pushes_with_the_docker_config_secret(k8s_workflow, engine, project, docker_client):
    registry = base.make_registry(
        project,
        name="auth",
        url=engine["ATMOSLY_TEST_AUTH_REGISTRY"],
        username=engine["ATMOSLY_TEST_AUTH_REGISTRY_USER"],
        password=engine["ATMOSLY_TEST_AUTH_REGISTRY_PASSWORD"],
    )
    workflow, marker = k8s_workflow(registry=registry)
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, log_text(execution)
    assert engine["ATMOSLY_TEST_AUTH_REGISTRY_PASSWORD"] not in log_text(execution)
    auth = {"username": registry.username, "password": registry.password}
    output, _ = pull_and_run(docker_client, execution.image, auth)
    assert f"{marker} on x86_64" in output


def pushed_cache_tags(execution) -> list[str]:
    """The tags of the run's registry layer cache repository (`<repository>-cache`), read
    through the registry API (open registry); [] when it has none."""
    host, _, path = execution.image.partition("/")
    repository = path.rpartition(":")[0]
    answer = requests.get(f"http://{host}/v2/{repository}-cache/tags/list", timeout=10)
    return [] if answer.status_code == 404 else answer.json().get("tags") or []


def test_caching_on_the_pod_writes_the_registry_layer_cache(k8s_workflow):
    workflow, _ = k8s_workflow(cache_enabled=True)
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, log_text(execution)
    assert "Registry layer cache not used" not in log_text(execution)
    # A fresh pod has no layers of its own: the cache lives only in the registry.
    assert pushed_cache_tags(execution), "buildah wrote no layer cache to the registry"


def test_caching_off_the_pod_neither_reads_nor_writes_a_cache(k8s_workflow):
    workflow, _ = k8s_workflow(cache_enabled=False)
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, log_text(execution)
    assert pushed_cache_tags(execution) == []


def test_an_arm64_build_in_the_pod_pushes_an_arm64_image(k8s_workflow, docker_client):
    workflow, marker = k8s_workflow(platform="linux/arm64")
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, log_text(execution)
    output, architecture = pull_and_run(docker_client, execution.image)
    assert f"{marker} on aarch64" in output  # the RUN step ran under QEMU
    assert architecture == "arm64"


def test_a_multi_arch_build_in_the_pod_pushes_one_manifest_list(k8s_workflow, docker_client):
    workflow, marker = k8s_workflow(platform="linux/amd64,linux/arm64")
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, log_text(execution)
    host, _, path = execution.image.partition("/")
    repository, _, tag = path.rpartition(":")
    answer = requests.get(
        f"http://{host}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        timeout=10,
    )
    assert answer.headers["Docker-Content-Digest"] == execution.image_digest  # the list's
    entries = answer.json()["manifests"]
    assert sorted(m["platform"]["architecture"] for m in entries) == ["amd64", "arm64"]
    for arch, machine in (("amd64", "x86_64"), ("arm64", "aarch64")):
        output, architecture = pull_and_run(
            docker_client, execution.image, platform=f"linux/{arch}"
        )
        assert f"{marker} on {machine}" in output and architecture == arch


def wait_for_build(double, suffix: str) -> str:
    """The name of the build pod ending in `suffix` (the attempt), once its build runs."""
    deadline = time.monotonic() + 120
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
    workflow, _ = k8s_workflow("RUN sleep 3\n")
    execution = start_run(workflow)
    thread = run_in_thread(execution.pk)
    first = wait_for_build(double, "-1")
    double.kubelet.interrupt("builds", first)
    thread.join(300)
    execution.refresh_from_db()
    assert execution.status == S.SUCCEEDED, execution.status_reason
    log = log_text(execution)
    assert f"the build pod {first} was lost (Pod was terminated in response to imminent" in log
    assert "building again in a new pod (once)" in log
    assert nothing_left(double)


def test_terminate_deletes_the_build_pod(k8s_workflow, double):
    workflow, _ = k8s_workflow("RUN sleep 120\n")
    execution = start_run(workflow)
    thread = run_in_thread(execution.pk)
    wait_for_build(double, "-1")
    do_terminate(execution)
    thread.join(60)
    execution.refresh_from_db()
    assert execution.status == S.TERMINATED, execution.status_reason
    assert nothing_left(double)


def play(double, security: dict, pod_security: dict | None = None) -> dict:
    """A one-container busybox pod applied to the double through the official client, played
    to its end: its status, and its log as "log"."""
    api = k8s_config.new_client_from_config_dict(yaml.safe_load(double.kubeconfig("builds")))
    name = unique_name("security")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "builds"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": pod_security or {},
            "containers": [
                {
                    "name": "main",
                    "image": "localhost/busybox:latest",
                    "command": [
                        "sh",
                        "-c",
                        "id -u; grep -E 'CapBnd|Seccomp:|NoNewPrivs' /proc/self/status",
                    ],
                    "securityContext": security,
                }
            ],
        },
    }
    k8s_client.CoreV1Api(api).patch_namespaced_pod(
        name, "builds", pod, field_manager="test", _content_type="application/apply-patch+yaml"
    )
    deadline = time.monotonic() + 60
    while (status := double.get("Pod", "builds", name)["status"]).get("phase") not in (
        "Succeeded",
        "Failed",
    ):
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    if status["phase"] == "Succeeded":
        status["log"] = b"".join(double.kubelet.logs("builds", name, "main", False)).decode()
    return status


def test_the_double_plays_the_security_context(double):
    """What the build pod relies on is applied, not ignored: a test double that dropped it would
    let a pod spec pass that a cluster runs differently."""
    dropped = play(double, {"capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": False})
    assert "CapBnd:\t0000000000000000" in dropped["log"] and "NoNewPrivs:\t1" in dropped["log"]
    assert "Seccomp:\t2" in dropped["log"]  # RuntimeDefault: podman's filter
    builder = play(
        double,
        {"capabilities": {"drop": ["ALL"], "add": ["SETUID", "SETGID"]}},
        {"runAsUser": 1000, "seccompProfile": {"type": "Unconfined"}},
    )
    assert builder["log"].startswith("1000\n"), builder["log"]
    assert "CapBnd:\t00000000000000c0" in builder["log"] and "Seccomp:\t0" in builder["log"]
    refused = play(double, {"runAsNonRoot": True, "runAsUser": 0})
    assert (refused["phase"], refused["reason"]) == ("Failed", "CreateContainerConfigError")


@pytest.mark.parametrize("tool", ["buildah", "buildkit"])
def test_the_pod_and_secret_pass_the_kubernetes_schemas(tool):
    spec = pod_for(tool=tool)
    pod, secret = spec.pod(), spec.secret()
    for obj in (pod, secret):
        kubernetes_validate.validate(obj, "1.37.0", strict=True)
    text = str(pod)
    assert "token-123" not in text and "registry-pw-9" not in text and "npm-secret-1" not in text
    # The docker config's "auth" form: Buildah (containers/image) reads no other.
    config = json.loads(secret["stringData"]["config.json"])
    assert config == {"auths": {"registry.example.com": {"auth": "dTpyZWdpc3RyeS1wdy05"}}}
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
    build = podspec["containers"][0]["securityContext"]
    assert build["capabilities"] == {"add": ["SETUID", "SETGID"]}  # newuidmap, newgidmap
    assert build["allowPrivilegeEscalation"] is True  # their file capabilities
    assert build["seccompProfile"] == {"type": "Unconfined"}
    mount = next(m for m in podspec["containers"][0]["volumeMounts"] if m["name"] == "layers")
    assert mount["mountPath"].endswith("/buildkit" if tool == "buildkit" else "/containers")


def test_no_spot_and_multi_arch_mean_no_placement():
    podspec = pod_for(spot=False, platforms=["linux/amd64", "linux/arm64"]).pod()["spec"]
    assert "nodeSelector" not in podspec
    assert "affinity" not in podspec and "tolerations" not in podspec
