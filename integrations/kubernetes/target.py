"""The production deploy target: a Kubernetes cluster, through the official client.

Objects go in with server-side apply (PATCH `application/apply-patch+yaml`, field manager
"workflows", force) into the environment's namespace, with the environment's stored kubeconfig
or the worker's in-cluster service account. Then the rollout is waited for the way `kubectl
rollout status` does: observedGeneration caught up, every replica updated and available, and the
Progressing condition not past its deadline. Pods of the new release that wait with a reason
that will not clear by itself (ImagePullBackOff, CrashLoopBackOff ...) fail the rollout at once,
with the cluster's reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import urllib3
import yaml
from django.conf import settings
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from integrations.errors import Cancelled, ProviderError
from integrations.kubernetes.manifests import (
    EXECUTION_LABEL,
    DeploySpec,
    build_manifests,
    describe,
    object_name,
    workload,
)
from integrations.targets import RolloutFailed, Target

if TYPE_CHECKING:
    from workflows.models import Environment, Workflow

FIELD_MANAGER = "workflows"
APPLY_PATCH = "application/apply-patch+yaml"
REQUEST_TIMEOUT = (5, 30)  # connect, read (seconds)
# Waiting reasons of a container that will not go away by waiting longer.
STUCK_REASONS = (
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)
# (API class, method suffix) per kind: patch_namespaced_<suffix>, delete_namespaced_<suffix>.
KINDS = {
    "Secret": (client.CoreV1Api, "secret"),
    "Pod": (client.CoreV1Api, "pod"),
    "Service": (client.CoreV1Api, "service"),
    "Deployment": (client.AppsV1Api, "deployment"),
    "CronJob": (client.BatchV1Api, "cron_job"),
}


# What loading a kubeconfig (or the in-cluster credentials) raises for unusable ones.
CONFIG_ERRORS = (ConfigException, yaml.YAMLError, KeyError, TypeError, ValueError)


def new_api_client(kubeconfig: str, in_cluster: bool = False) -> client.ApiClient:
    """An API client from a kubeconfig's text (its current context) or, with `in_cluster`,
    the pod's service account. Raises one of CONFIG_ERRORS when it cannot be used."""
    configuration = client.Configuration()
    configuration.retries = 1
    if in_cluster:
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    data = yaml.safe_load(kubeconfig or "")
    if not isinstance(data, dict):
        raise ConfigException("the environment has no kubeconfig")
    return config.new_client_from_config_dict(data, client_configuration=configuration)


class KubernetesError(ProviderError):
    """The cluster refused, could not be reached, or its credentials cannot be used."""


def api_message(exc: ApiException) -> str:
    """The `message` of the Status body the API answers errors with, else its reason."""
    try:
        body = json.loads(exc.body or "")
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except ValueError:
        pass
    return f"{exc.status} {exc.reason}".strip()


class KubernetesTarget(Target):
    kind = "kubernetes"

    def open(self) -> str:
        self.namespace = self.environment.namespace
        self.poll = settings.DEPLOY_POLL_SECONDS
        self.api = self.connect()
        return str(self.api.configuration.host)

    def connect(self) -> client.ApiClient:
        name = self.environment.name
        try:
            return new_api_client(self.environment.kubeconfig, self.environment.in_cluster)
        except CONFIG_ERRORS as exc:
            how = "in-cluster credentials" if self.environment.in_cluster else "kubeconfig"
            raise KubernetesError(f"the {how} of environment {name} cannot be used: {exc}") from exc

    def describe(self) -> str:
        return f"Kubernetes at {self.address}, namespace {self.namespace}"

    def architectures(self) -> set[str]:
        """The CPU architectures of the cluster's nodes (status.nodeInfo.architecture), empty
        when the credentials may not list nodes (a namespace-scoped deployer often may not:
        nodes are cluster-scoped), which is logged."""
        try:
            nodes = self.call("list nodes", client.CoreV1Api(self.api).list_node)
        except KubernetesError as exc:
            if exc.system:
                raise
            self.log(f"Architecture not checked: {exc.message}")
            return set()
        found = {
            node.status.node_info.architecture
            for node in nodes.items
            if node.status and node.status.node_info and node.status.node_info.architecture
        }
        return found

    def object_name(self, workflow: Workflow, environment: Environment) -> str:
        service = workflow.service.name
        return service if workflow.is_default else object_name(service, workflow.name)

    def prepare(self, spec: DeploySpec, current: object, others: object) -> DeploySpec:
        return spec

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One API call, its failures turned into the one-line errors users see."""
        try:
            return fn(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as exc:
            message = api_message(exc)
            if exc.status and exc.status >= 500:
                raise KubernetesError(
                    f"the Kubernetes API at {self.address} failed to {what}: {message}",
                    system=True,
                    retryable=True,
                ) from exc
            raise KubernetesError(f"Kubernetes refused to {what}: {message}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise KubernetesError(
                f"cannot reach the Kubernetes API at {self.address}: {reason}",
                system=True,
                retryable=True,
            ) from exc

    def method(self, kind: str, verb: str) -> Callable[..., Any]:
        api_class, suffix = KINDS[kind]
        return getattr(api_class(self.api), f"{verb}_namespaced_{suffix}")

    def apply(self, manifest: dict[str, Any]) -> Any:
        name = manifest["metadata"]["name"]
        result = self.call(
            f"apply {describe(manifest)} in namespace {self.namespace}",
            self.method(manifest["kind"], "patch"),
            name=name,
            namespace=self.namespace,
            body=manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY_PATCH,
        )
        generation = getattr(result.metadata, "generation", None)
        suffix = f" (generation {generation})" if generation else ""
        self.log(f"Applied {describe(manifest)}{suffix} with field manager {FIELD_MANAGER}")
        return result

    def deploy(self, spec: DeploySpec) -> dict[str, Any]:
        manifests = build_manifests(spec)
        for manifest in manifests:
            self.check_cancelled()
            self.apply(manifest)
        main = workload(manifests)
        if main["kind"] == "Deployment":
            self.wait_for_rollout(spec)
        return {"namespace": self.namespace, "objects": [describe(m) for m in manifests]}

    def restore(self, spec: DeploySpec | None, name: str) -> None:
        """Puts back `spec` without waiting, or with nothing to put back removes the workload."""
        if spec is not None:
            for manifest in build_manifests(spec):
                self.apply(manifest)
            return
        for kind in ("Deployment", "CronJob", "Service"):
            try:
                self.method(kind, "delete")(
                    name=name, namespace=self.namespace, _request_timeout=REQUEST_TIMEOUT
                )
                self.log(f"Removed {kind}/{name}")
            except ApiException as exc:
                if exc.status != 404:
                    raise KubernetesError(
                        f"Kubernetes refused to remove {kind}/{name}: {api_message(exc)}"
                    ) from exc

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()

    def wait_for_rollout(self, spec: DeploySpec) -> None:
        apps = client.AppsV1Api(self.api)
        limit = time.monotonic() + spec.progress_deadline_seconds + 30
        last = ""
        while True:
            self.check_cancelled()
            deployment = self.call(
                f"read Deployment/{spec.name}",
                apps.read_namespaced_deployment_status,
                name=spec.name,
                namespace=self.namespace,
            )
            done, state = self.rollout_state(deployment)
            if done:
                self.log(f"Rollout of Deployment/{spec.name} complete: {state}")
                return
            if state != last:
                self.log(f"Waiting for the rollout: {state}")
                last = state
            stuck = self.stuck_pods(spec)
            if stuck:
                raise RolloutFailed(f"rollout of {spec.name} failed: {stuck}")
            if time.monotonic() > limit:
                raise RolloutFailed(f"rollout of {spec.name} did not finish: {state}")
            self.cancelled.wait(self.poll)

    def rollout_state(self, deployment: client.V1Deployment) -> tuple[bool, str]:
        """(done, what it is doing), as `kubectl rollout status` reads a Deployment."""
        status, want = deployment.status, deployment.spec.replicas or 0
        meta = deployment.metadata or client.V1ObjectMeta()  # one read back always has it
        if status is None or (status.observed_generation or 0) < (meta.generation or 0):
            return False, "waiting for the controller to see the new generation"
        for condition in status.conditions or []:
            if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                raise RolloutFailed(
                    f"rollout of {meta.name} exceeded its progress deadline: {condition.message}"
                )
        updated, total = status.updated_replicas or 0, status.replicas or 0
        available = status.available_replicas or 0
        if updated < want:
            return False, f"{updated} of {want} replicas updated"
        if total > updated:
            return False, f"{total - updated} old replicas pending termination"
        if available < updated:
            return False, f"{available} of {updated} updated replicas available"
        return True, f"{available} of {want} replicas available"

    def stuck_pods(self, spec: DeploySpec) -> str:
        """The reason a pod of this release waits and will keep waiting, if any."""
        core = client.CoreV1Api(self.api)
        selector = {**spec.selector, EXECUTION_LABEL: spec.labels[EXECUTION_LABEL]}
        pods = self.call(
            "list the release's pods",
            core.list_namespaced_pod,
            namespace=self.namespace,
            label_selector=",".join(f"{k}={v}" for k, v in selector.items()),
        )
        for pod in pods.items:
            statuses = [
                *(pod.status.init_container_statuses or []),
                *(pod.status.container_statuses or []),
            ]
            for status in statuses:
                waiting = status.state.waiting if status.state else None
                if waiting and waiting.reason in STUCK_REASONS:
                    message = f": {waiting.message}" if waiting.message else ""
                    return f"pod {pod.metadata.name}: {waiting.reason}{message}"
        return ""
