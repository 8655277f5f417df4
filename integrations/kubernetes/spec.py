"""A deploy's DeploySpec from the database: the workflow's deploy settings, the environment, the
run's variables and the registry credentials the image is pulled with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from integrations.kubernetes.manifests import (
    DIGEST_ANNOTATION,
    ENVIRONMENT_LABEL,
    INSTANCE_LABEL,
    DeploySpec,
    make_labels,
    pinned_image,
)
from integrations.podman.distribution import split_reference
from integrations.podman.engine import LOCAL_HOSTS, one_line
from integrations.registries import RegistryAuth, RegistryError, get_provider

if TYPE_CHECKING:
    from workflows.models import Environment, RegistryConnection, Workflow


def pull_registry(workflow: Workflow) -> RegistryConnection | None:
    """The registry connection the deployed image comes from."""
    if workflow.builds_image:
        return workflow.registry
    return workflow.service.image_registry or workflow.registry


def image_host(image: str) -> str:
    return split_reference(image)[0]


def pull_auth(workflow: Workflow, image: str) -> RegistryAuth | None:
    """Credentials for pulling `image`, only if they are for the image's own registry."""
    connection = pull_registry(workflow)
    if connection is None:
        return None
    if connection.provider != "ecr" and not (connection.username or connection.password):
        return None  # an open registry; ECR mints a token from its AWS keys
    try:
        auth = get_provider(connection.provider).login(connection)
    except RegistryError as exc:
        raise RegistryError(f"registry login for the image pull failed: {one_line(exc)}") from exc
    return auth if auth.host == image_host(image) else None


def registry_insecure(workflow: Workflow, image: str) -> bool:
    connection = pull_registry(workflow)
    return bool(connection and connection.insecure) or image_host(image).split(":")[0] in (
        LOCAL_HOSTS
    )


def deploy_spec(
    *,
    workflow: Workflow,
    environment: Environment,
    name: str,
    image: str,
    digest: str,
    commit: str,
    execution_id: int,
    runtime_env: dict[str, str],
    secret_keys: set[str],
) -> DeploySpec:
    service = workflow.service
    labels = make_labels(
        project=service.project.name,
        service=service.name,
        workflow=workflow.name,
        environment=environment.name,
        instance=name,
        execution=execution_id,
        commit=commit,
    )
    app = workflow.pipeline_type == "app_cd"
    return DeploySpec(
        pipeline_type=workflow.pipeline_type,
        name=name,
        namespace=environment.namespace,
        image=pinned_image(image, digest),
        labels=labels,
        selector={INSTANCE_LABEL: labels[INSTANCE_LABEL], ENVIRONMENT_LABEL: environment.name},
        annotations={DIGEST_ANNOTATION: digest} if digest else {},
        port=workflow.service_port if app else None,
        replicas=workflow.replicas,
        resources=dict(workflow.resources or {}),
        health_check_path=workflow.health_check_path if app else "",
        cron_schedule=workflow.cron_schedule,
        cron_concurrency=workflow.cron_concurrency,
        time_zone=workflow.cron_time_zone or "UTC",
        env={k: v for k, v in runtime_env.items() if k not in secret_keys},
        secret_env={k: v for k, v in runtime_env.items() if k in secret_keys},
        pull_auth=pull_auth(workflow, image),
        registry_insecure=registry_insecure(workflow, image),
        progress_deadline_seconds=settings.DEPLOY_PROGRESS_DEADLINE_SECONDS,
    )
