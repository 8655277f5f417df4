"""The Kubernetes objects of one deploy, built with the official client's models.

App CD is a Deployment plus a Service, Queues & Workers CD a Deployment alone, Cron CD a CronJob.
Every object carries the same labels (project, service, workflow, environment, execution,
commit). Secret runtime variables reach the container through a Secret and `secretKeyRef`, never
inline; a registry with credentials gets a `kubernetes.io/dockerconfigjson` pull secret.
`build_manifests(spec)` returns the objects as the API takes them (camelCase dicts), in the order
they are applied: secrets first, so the pods never start without them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient

from integrations.registries import RegistryAuth

LABEL_PREFIX = "workflows.atmosly.io"
MANAGED_BY = "workflows"
INSTANCE_LABEL = "app.kubernetes.io/instance"
ENVIRONMENT_LABEL = f"{LABEL_PREFIX}/environment"
EXECUTION_LABEL = f"{LABEL_PREFIX}/execution"
COMMIT_LABEL = f"{LABEL_PREFIX}/commit"
DIGEST_ANNOTATION = f"{LABEL_PREFIX}/image-digest"
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PIPELINE_TYPES = ("app_cd", "cron_cd", "worker_cd")
_serializer = ApiClient()


def label_value(text: str) -> str:
    """`text` as a valid label value: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text or "")[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def object_name(*parts: str) -> str:
    """A DNS-1123 label made of `parts`; a name too long keeps a hash suffix, so it stays unique."""
    name = "-".join(p for p in parts if p).lower()
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def pinned_image(image: str, digest: str) -> str:
    """`repo:tag` pinned to its digest (`repo@sha256:...`), so every pod runs the same bytes."""
    if not digest:
        return image
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return f"{name}@{digest}"


@dataclass(frozen=True)
class DeploySpec:
    """Everything the manifests of one deploy depend on, free of database objects."""

    pipeline_type: str
    name: str
    namespace: str
    image: str
    labels: dict[str, str]
    selector: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    host_port: int | None = None  # the local engine publishes the port on this machine
    host_ip: str | None = None  # ... on this address only (DEPLOY_LOCAL_HOST_IP)
    replicas: int = 1
    resources: dict[str, str] = field(default_factory=dict)
    health_check_path: str = ""
    cron_schedule: str = ""
    cron_concurrency: str = "Forbid"
    time_zone: str = ""
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)
    pull_auth: RegistryAuth | None = None
    registry_insecure: bool = False  # plain HTTP registry (the local engine's pulls)
    progress_deadline_seconds: int = 600

    @property
    def env_secret_name(self) -> str:
        return object_name(self.name, "env")

    @property
    def pull_secret_name(self) -> str:
        return object_name(self.name, "pull")

    @property
    def has_pull_secret(self) -> bool:
        auth = self.pull_auth
        return bool(auth and (auth.username or auth.password))


def make_labels(
    *,
    project: str,
    service: str,
    workflow: str,
    environment: str,
    instance: str,
    execution: int | str,
    commit: str,
) -> dict[str, str]:
    """The labels every object of a deploy carries; all values are valid label values."""
    labels = {
        "app.kubernetes.io/name": service,
        INSTANCE_LABEL: instance,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        f"{LABEL_PREFIX}/project": project,
        f"{LABEL_PREFIX}/service": service,
        f"{LABEL_PREFIX}/workflow": workflow,
        ENVIRONMENT_LABEL: environment,
        EXECUTION_LABEL: str(execution),
        COMMIT_LABEL: commit,
    }
    return {key: label_value(value) for key, value in labels.items()}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def meta(spec: DeploySpec, name: str | None = None) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(
        name=name or spec.name,
        namespace=spec.namespace,
        labels=dict(spec.labels),
        annotations=dict(spec.annotations) or None,
    )


def env_secret(spec: DeploySpec) -> client.V1Secret | None:
    if not spec.secret_env:
        return None
    data: dict[str, bytes | str] = {k: b64(v) for k, v in sorted(spec.secret_env.items())}
    return client.V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=meta(spec, spec.env_secret_name),
        type="Opaque",
        data=data,
    )


def pull_secret(spec: DeploySpec) -> client.V1Secret | None:
    if not spec.has_pull_secret:
        return None
    auth = spec.pull_auth
    assert auth is not None  # has_pull_secret says so
    token = b64(f"{auth.username}:{auth.password}")
    config = {"auths": {auth.host: {"username": auth.username, "password": auth.password}}}
    config["auths"][auth.host]["auth"] = token
    return client.V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=meta(spec, spec.pull_secret_name),
        type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": b64(json.dumps(config))},
    )


def env_vars(spec: DeploySpec) -> list[client.V1EnvVar]:
    plain = dict(spec.env)
    if spec.port and "PORT" not in plain and "PORT" not in spec.secret_env:
        plain["PORT"] = str(spec.port)  # the usual contract: the app listens on $PORT
    out = [client.V1EnvVar(name=k, value=v) for k, v in sorted(plain.items())]
    for key in sorted(spec.secret_env):
        ref = client.V1SecretKeySelector(name=spec.env_secret_name, key=key)
        out.append(client.V1EnvVar(name=key, value_from=client.V1EnvVarSource(secret_key_ref=ref)))
    return out


def resources(spec: DeploySpec) -> client.V1ResourceRequirements | None:
    values = spec.resources or {}
    requests = {k: v for k in ("cpu", "memory") if (v := values.get(f"{k}_request"))}
    limits = {k: v for k in ("cpu", "memory") if (v := values.get(f"{k}_limit"))}
    if not requests and not limits:
        return None
    return client.V1ResourceRequirements(requests=requests or None, limits=limits or None)


def probes(spec: DeploySpec) -> dict[str, client.V1Probe]:
    if not (spec.health_check_path and spec.port):
        return {}
    action = client.V1HTTPGetAction(path=spec.health_check_path, port=spec.port)
    return {
        "readiness_probe": client.V1Probe(
            http_get=action, initial_delay_seconds=2, period_seconds=5, failure_threshold=3
        ),
        "liveness_probe": client.V1Probe(
            http_get=action, initial_delay_seconds=15, period_seconds=10, failure_threshold=3
        ),
    }


def container(spec: DeploySpec) -> client.V1Container:
    ports = None
    if spec.port:
        ports = [
            client.V1ContainerPort(
                name="http",
                container_port=spec.port,
                host_port=spec.host_port,
                host_ip=spec.host_ip,
                protocol="TCP",
            )
        ]
    checks = probes(spec)
    return client.V1Container(
        name="app",
        image=spec.image,
        image_pull_policy="IfNotPresent",
        ports=ports,
        env=env_vars(spec) or None,
        resources=resources(spec),
        readiness_probe=checks.get("readiness_probe"),
        liveness_probe=checks.get("liveness_probe"),
    )


def pod_template(spec: DeploySpec, restart_policy: str = "Always") -> client.V1PodTemplateSpec:
    pull = [client.V1LocalObjectReference(name=spec.pull_secret_name)]
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(
            labels=dict(spec.labels), annotations=spec.annotations or None
        ),
        spec=client.V1PodSpec(
            containers=[container(spec)],
            restart_policy=restart_policy,
            image_pull_secrets=pull if spec.has_pull_secret else None,
        ),
    )


def deployment(spec: DeploySpec) -> client.V1Deployment:
    return client.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=meta(spec),
        spec=client.V1DeploymentSpec(
            replicas=spec.replicas,
            selector=client.V1LabelSelector(match_labels=dict(spec.selector)),
            progress_deadline_seconds=spec.progress_deadline_seconds,
            revision_history_limit=10,
            template=pod_template(spec),
        ),
    )


def service(spec: DeploySpec) -> client.V1Service:
    if spec.port is None:  # the client's own validation would refuse it the same way
        raise ValueError("Invalid value for `port`, must not be `None`")
    port = client.V1ServicePort(name="http", port=spec.port, target_port=spec.port, protocol="TCP")
    return client.V1Service(
        api_version="v1",
        kind="Service",
        metadata=meta(spec),
        spec=client.V1ServiceSpec(type="ClusterIP", selector=dict(spec.selector), ports=[port]),
    )


def cron_job(spec: DeploySpec) -> client.V1CronJob:
    job = client.V1JobSpec(backoff_limit=0, template=pod_template(spec, restart_policy="Never"))
    return client.V1CronJob(
        api_version="batch/v1",
        kind="CronJob",
        metadata=meta(spec),
        spec=client.V1CronJobSpec(
            schedule=spec.cron_schedule,
            time_zone=spec.time_zone or None,
            concurrency_policy=spec.cron_concurrency,
            successful_jobs_history_limit=3,
            failed_jobs_history_limit=1,
            job_template=client.V1JobTemplateSpec(
                metadata=client.V1ObjectMeta(labels=dict(spec.labels)), spec=job
            ),
        ),
    )


def build_objects(spec: DeploySpec) -> list[Any]:
    """The client model objects, in apply order."""
    if spec.pipeline_type not in PIPELINE_TYPES:
        raise ValueError(f"pipeline type {spec.pipeline_type!r} does not deploy")
    objects: list[Any] = [s for s in (pull_secret(spec), env_secret(spec)) if s is not None]
    if spec.pipeline_type == "cron_cd":
        return [*objects, cron_job(spec)]
    if spec.pipeline_type == "app_cd":
        objects.append(service(spec))
    return [*objects, deployment(spec)]


def build_manifests(spec: DeploySpec) -> list[dict[str, Any]]:
    return [_serializer.sanitize_for_serialization(o) for o in build_objects(spec)]


def workload(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The Deployment or CronJob among a deploy's manifests."""
    return next(m for m in manifests if m["kind"] in ("Deployment", "CronJob"))


def describe(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"
