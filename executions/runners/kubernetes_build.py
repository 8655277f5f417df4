"""The Build stage as a pod in a Kubernetes cluster (the workflow's `builder: kubernetes`).

The cluster and namespace are those of the workflow's builder environment (its kubeconfig or
in-cluster account). The pod (integrations/kubernetes/builder.py) clones, builds rootless and
pushes straight to the registry; its Secret lives only as long as the stage. The pod's log is
streamed into the stage log; terminate deletes the pod; a pod lost to its node (a spot
interruption: deleted with its node, or failed with a DisruptionTarget condition) ends with a
retryable StageError, and the build runs once more in a new pod.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings
from kubernetes import client

from executions.runners.base import Context, StageError
from executions.runners.push import render_tag
from integrations.errors import ProviderError
from integrations.git.config import public_url
from integrations.kubernetes.builder import DIGEST_MARKER, BuildPod
from integrations.kubernetes.target import KubernetesError, KubernetesTarget
from integrations.podman import buildsteps
from integrations.podman.engine import one_line
from integrations.podman.layercache import cache_repository
from integrations.registries import RegistryError, get_provider, image_name

if TYPE_CHECKING:
    from executions.models import StageRun
    from integrations.kubernetes.target import KubernetesTarget
    from workflows.models import Workflow

STAGE_LABEL = "workflows.atmosly.io/build-stage"
EXECUTION_LABEL = "workflows.atmosly.io/execution"
ATTEMPTS = 2  # a pod lost to a spot interruption is built again once
LOST_REASONS = ("Terminated", "NodeShutdown", "Shutdown", "NodeLost", "Evicted")


def target_for(workflow: Workflow, ctx: Context) -> KubernetesTarget:
    env = workflow.builder_environment
    if env is None or not env.is_active:
        raise StageError("the Kubernetes builder's environment is missing or inactive")
    return KubernetesTarget(env, workflow, ctx.log.line, ctx.cancelled)


class KubernetesBuild:
    def run(self, ctx: Context) -> dict[str, Any]:
        workflow, execution = ctx.workflow, ctx.execution
        if workflow.registry is None or not workflow.repository:
            raise StageError("no registry and repository are set for the push")
        try:
            auth = get_provider(workflow.registry.provider).login(workflow.registry)
        except RegistryError as exc:
            raise StageError(f"registry login failed: {one_line(exc)}") from exc
        if auth.password:
            ctx.log.add_secrets([auth.password])
        target = target_for(workflow, ctx)
        repo = image_name(auth.host, workflow.repository)
        sha = ctx.outputs.get("commit_sha") or execution.commit_sha
        tags = [sha]
        tag = render_tag(
            workflow.tag_template, branch=execution.branch, sha=sha, number=execution.number
        )
        if tag != sha:
            tags.append(tag)
        service = workflow.service
        spec = BuildPod(
            name="",
            namespace=target.namespace,
            labels={EXECUTION_LABEL: str(execution.pk), STAGE_LABEL: str(ctx.stage.pk)},
            repo_url=service.repo_url,
            public_repo_url=public_url(service.repo_url),
            commit=sha,
            context=workflow.build_context,
            dockerfile=workflow.dockerfile,
            destinations=[f"{repo}:{t}" for t in tags],
            platforms=workflow.platforms,
            cache=workflow.cache_enabled,
            # Read and written only with caching on: a fresh pod has no layers of its own.
            cache_repository=cache_repository(auth.host, workflow.repository),
            spot=workflow.spot_instances,
            volume_size_gb=workflow.volume_size_gb,
            tool=settings.KUBERNETES_BUILDER_TOOL,
            image=settings.KUBERNETES_BUILDER_IMAGE,
            git_image=settings.KUBERNETES_BUILDER_GIT_IMAGE,
            spot_labels=list(settings.KUBERNETES_BUILDER_SPOT_LABELS),
            storage_class=settings.KUBERNETES_BUILDER_STORAGE_CLASS,
            timeout_seconds=workflow.stage_timeout_minutes * 60,
            git_username=service.git_username or ("git" if service.git_token else ""),
            git_password=service.git_token or "",
            registry_host=auth.host,
            tls_verify=not workflow.registry.insecure,
            registry_auth=auth.auth_config(),
            build_args=dict(ctx.build_args),
        )
        # Unique per installation and stage run, as the local build's step token is.
        assert ctx.stage.started_at is not None  # set when the stage moved to Running
        token = buildsteps.build_token(execution.pk, ctx.stage.pk, ctx.stage.started_at)[-6:]
        for attempt in range(1, ATTEMPTS + 1):
            spec.name = f"workflows-build-{execution.pk}-{ctx.stage.pk}-{token}-{attempt}"
            try:
                digest = self.attempt(ctx, target, spec)
                break
            except (StageError, ProviderError) as exc:
                if not exc.retryable or attempt == ATTEMPTS or ctx.cancelled.is_set():
                    raise
                ctx.log.line(f"{exc.message}; building again in a new pod (once)")
        return {
            "image": f"{repo}:{sha}",
            "image_digest": digest,
            "image_tags": tags,
            "image_architectures": [p.rpartition("/")[2] for p in workflow.platforms],
            "pushed_by": "kubernetes",
        }

    def attempt(self, ctx: Context, target: KubernetesTarget, spec: BuildPod) -> str:
        """One pod: Secret and pod applied, logs streamed, outcome read; both deleted after."""
        core = client.CoreV1Api(target.api)
        ns = spec.namespace
        ctx.on_cancel(lambda: self.delete(core, ns, spec))
        try:
            target.apply(spec.secret())
            target.apply(spec.pod())
            digest = ""
            for container in ("clone", "build"):
                if not self.wait_started(ctx, target, core, spec, container):
                    break
                for line in self.log_lines(core, ns, spec.name, container):
                    if line.startswith(DIGEST_MARKER):
                        digest = line[len(DIGEST_MARKER) :].strip()
                    ctx.log.line(line)
            ctx.check_cancelled()
            self.outcome(ctx, target, core, spec)
        finally:
            self.delete(core, ns, spec)
        if not digest.startswith("sha256:"):
            raise StageError("the build pod did not report the pushed digest", system=True)
        return digest

    def read(self, target: KubernetesTarget, core: client.CoreV1Api, spec: BuildPod) -> Any:
        """The pod now (a V1Pod, as Any: the client types every field optional, though one
        read from the API server has its status and name), or None when the cluster deleted it."""
        try:
            return target.call(
                f"read pod {spec.name}", core.read_namespaced_pod, spec.name, spec.namespace
            )
        except (StageError, KubernetesError) as exc:
            if "not found" in exc.message:
                return None
            raise

    def wait_started(
        self,
        ctx: Context,
        target: KubernetesTarget,
        core: client.CoreV1Api,
        spec: BuildPod,
        container: str,
    ) -> bool:
        """Until `container` runs or ended; False when the pod ended without running it."""
        while True:
            ctx.check_cancelled()
            pod = self.read(target, core, spec)
            if pod is None:
                raise lost(spec, "deleted by the cluster")
            statuses = (pod.status.init_container_statuses or []) + (
                pod.status.container_statuses or []
            )
            for status in statuses:
                if (
                    status.name == container
                    and status.state
                    and (status.state.running or status.state.terminated)
                ):
                    return True
            if pod.status.phase in ("Succeeded", "Failed"):
                return False
            time.sleep(settings.DEPLOY_POLL_SECONDS)

    @staticmethod
    def log_lines(core: client.CoreV1Api, ns: str, name: str, container: str) -> Iterator[str]:
        # Not preloaded, the client answers the HTTP response (its stubs say str).
        response: Any = core.read_namespaced_pod_log(
            name, ns, container=container, follow=True, _preload_content=False
        )
        pending = b""
        with contextlib.suppress(Exception):  # the stream is cut when the pod is deleted
            for chunk in response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode(errors="replace")
        if pending:
            yield pending.decode(errors="replace")

    def outcome(
        self, ctx: Context, target: KubernetesTarget, core: client.CoreV1Api, spec: BuildPod
    ) -> None:
        """Raises unless the pod Succeeded; a pod lost to its node is retryable."""
        while True:
            pod = self.read(target, core, spec)
            if pod is None:
                raise lost(spec, "deleted by the cluster")
            conditions = pod.status.conditions or []
            if any(c.type == "DisruptionTarget" and c.status == "True" for c in conditions):
                raise lost(spec, pod.status.message or pod.status.reason or "node shut down")
            if pod.status.phase == "Succeeded":
                return
            if pod.status.phase == "Failed":
                if pod.status.reason in LOST_REASONS:
                    raise lost(spec, pod.status.message or pod.status.reason)
                raise StageError(failure(pod))
            ctx.check_cancelled()
            time.sleep(settings.DEPLOY_POLL_SECONDS)

    @staticmethod
    def delete(core: client.CoreV1Api, ns: str, spec: BuildPod) -> None:
        with contextlib.suppress(Exception):
            core.delete_namespaced_pod(spec.name, ns, grace_period_seconds=0)
        with contextlib.suppress(Exception):
            core.delete_namespaced_secret(spec.secret_name, ns)


def lost(spec: BuildPod, why: str) -> StageError:
    return StageError(
        f"the build pod {spec.name} was lost ({why}), as on a spot interruption",
        system=True,
        retryable=True,
    )


def failure(pod: Any) -> str:  # a V1Pod read back: see `read`
    for status in (pod.status.init_container_statuses or []) + (
        pod.status.container_statuses or []
    ):
        ended = status.state and status.state.terminated
        if ended and ended.exit_code:
            what = "clone" if status.name == "clone" else "build"
            return f"{what} failed in pod {pod.metadata.name}: exit code {ended.exit_code}"
    return f"build pod {pod.metadata.name} failed: {pod.status.reason or pod.status.phase}"


def delete_build_pods(stage: StageRun) -> int:
    """Recovery: the pods and Secrets of a lost worker's Kubernetes build. Returns pods deleted."""
    workflow = stage.execution.workflow
    env = workflow.builder_environment
    if env is None:
        return 0
    target = KubernetesTarget(env, workflow, lambda line: None, threading.Event())
    core = client.CoreV1Api(target.api)
    selector = f"{STAGE_LABEL}={stage.pk}"
    pods = core.list_namespaced_pod(env.namespace, label_selector=selector).items
    for pod in pods:
        if pod.metadata and pod.metadata.name:  # listed objects always have one
            core.delete_namespaced_pod(pod.metadata.name, env.namespace, grace_period_seconds=0)
    for secret in core.list_namespaced_secret(env.namespace, label_selector=selector).items:
        if secret.metadata and secret.metadata.name:
            core.delete_namespaced_secret(secret.metadata.name, env.namespace)
    return len(pods)
