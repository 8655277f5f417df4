"""Releases: what runs where, one deploy per service and environment at a time, no deploy of an
older commit over a newer one, and rollback to any earlier release.

The deploy lock is a row with a unique (service, environment) constraint: a deploy takes it
with an INSERT, so the database refuses a second holder, and gives it back in `finally`. A
deploy that finds it taken (or an older deploy waiting for it) waits, polling, and can be
terminated while it waits; waiting deploys go oldest run first. A holder whose run has ended or
whose worker stopped beating is stale, and its row is removed by the next deploy that waits.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import yaml
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from executions.models import (
    DeployLock,
    Execution,
    Release,
    StageKind,
    StageRun,
    Trigger,
)
from executions.runners.base import StageError, Terminated
from executions.status import ExecutionStatus, StageStatus
from integrations.kubernetes.manifests import build_manifests, object_name
from integrations.kubernetes.spec import deploy_spec
from workflows.models import TargetKind

if TYPE_CHECKING:
    from integrations.kubernetes.manifests import DeploySpec
    from workflows.models import Environment, Service, Workflow

LOCK_POLL_SECONDS = 0.2
ALIVE = (ExecutionStatus.RUNNING, ExecutionStatus.TERMINATING)


def current_release(workflow: Workflow, environment: Environment) -> Release | None:
    """The release of `workflow` that `environment` runs now: the row marked current."""
    return Release.objects.filter(
        workflow=workflow, environment=environment, is_current=True
    ).first()


def short(version: str) -> str:
    return version.removeprefix("sha256:")[:12]


# --- the deploy lock --------------------------------------------------------------------------


def lease_cutoff() -> datetime:
    return timezone.now() - timedelta(seconds=settings.WORKER_LEASE_SECONDS)


def is_stale(lock: DeployLock) -> bool:
    execution = lock.execution
    return execution.status not in ALIVE or (
        execution.heartbeat_at is not None and execution.heartbeat_at < lease_cutoff()
    )


def older_waiting(stage: StageRun, service: Service, environment: Environment) -> StageRun | None:
    """A deploy of an older run to the same place that is running and not holding the lock:
    it goes first."""
    execution = stage.execution
    holders = DeployLock.objects.values("stage_run_id")
    return (
        StageRun.objects.filter(
            kind=StageKind.DEPLOY,
            status=StageStatus.RUNNING,
            environment=environment,
            execution__workflow__service=service,
            execution__status__in=ALIVE,
            execution__heartbeat_at__gte=lease_cutoff(),
        )
        .filter(
            Q(execution__created_at__lt=execution.created_at)
            | Q(execution__created_at=execution.created_at, execution_id__lt=execution.pk)
        )
        .exclude(pk__in=holders)
        .select_related("execution__workflow")
        .order_by("execution__created_at", "execution_id")
        .first()
    )


def try_lock(stage: StageRun, service: Service, environment: Environment) -> DeployLock | None:
    """Takes the lock with an INSERT; None if another deploy holds it (the constraint says)."""
    try:
        with transaction.atomic():
            return DeployLock.objects.create(
                service=service,
                environment=environment,
                execution=stage.execution,
                stage_run=stage,
            )
    except IntegrityError:
        return None


@contextmanager
def deploy_lock(
    stage: StageRun,
    service: Service,
    environment: Environment,
    cancelled: threading.Event,
    log: Callable[[str], None],
) -> Iterator[float]:
    """Holds the (service, environment) deploy lock for the block; yields the seconds waited."""
    started, said = time.monotonic(), ""
    while True:
        if cancelled.is_set():
            raise Terminated()
        ahead = older_waiting(stage, service, environment)
        if ahead is None and try_lock(stage, service, environment) is not None:
            break
        holder = (
            DeployLock.objects.filter(service=service, environment=environment)
            .select_related("execution__workflow")
            .first()
        )
        if ahead is None and holder is not None and is_stale(holder):
            DeployLock.objects.filter(pk=holder.pk, execution=holder.execution).delete()
            log(f"Removed the stale deploy lock of {holder.execution}")
            continue
        blocker = ahead.execution if ahead else (holder.execution if holder else None)
        message = f"Waiting for {blocker} to deploy to {environment.name} first"
        if blocker is not None and message != said:
            log(message)
            said = message
        cancelled.wait(LOCK_POLL_SECONDS)
    waited = round(time.monotonic() - started, 3)
    if said:
        log(f"Took the deploy lock of {environment.name} after {waited:.1f} s")
    try:
        yield waited
    finally:
        DeployLock.objects.filter(stage_run=stage).delete()


# --- older commits ----------------------------------------------------------------------------


def first_released(service: Service, field: str, value: str) -> Release | None:
    return Release.objects.filter(service=service, **{field: value}).order_by("created_at").first()


def check_not_older(
    execution: Execution,
    environment: Environment,
    current: Release | None,
    commit: str,
    digest: str,
) -> None:
    """Refuses to put a commit (or, deploy-only, an image) that was first released before the
    one the environment runs now over it; only an explicit rollback may go back."""
    if current is None or execution.trigger == Trigger.ROLLBACK:
        return
    field, new = ("commit_sha", commit) if commit else ("image_digest", digest)
    running = getattr(current, field)
    if not new or not running or new == running:
        return
    new_first = first_released(current.service, field, new)
    running_first = first_released(current.service, field, running)
    if new_first and running_first and new_first.created_at < running_first.created_at:
        raise StageError(
            f"refusing to deploy {short(new)} to {environment.name}: it is older than "
            f"{short(running)} (release #{current.pk}) that runs there; to go back, roll back "
            f"to release #{new_first.pk} or an earlier release"
        )


# --- recording --------------------------------------------------------------------------------


def do_record_release(
    *,
    stage: StageRun,
    environment: Environment,
    workflow: Workflow,
    image: str,
    digest: str,
    commit: str,
    target: str,
    details: dict[str, Any],
    rollback_of: Release | None = None,
) -> Release:
    """Records a successful deploy (or rollback) as the release `environment` now runs for the
    workflow; the previous one stops being current in the same transaction."""
    execution = stage.execution
    with transaction.atomic():
        Release.objects.filter(workflow=workflow, environment=environment, is_current=True).update(
            is_current=False
        )
        return Release.objects.create(
            is_current=True,
            environment=environment,
            service=workflow.service,
            workflow=workflow,
            execution=execution,
            stage_run=stage,
            image=image,
            image_digest=digest,
            commit_sha=commit,
            deployed_by=execution.triggered_by,
            is_rollback=rollback_of is not None,
            rollback_of=rollback_of,
            target=target,
            details=details,
        )


# --- what runs where --------------------------------------------------------------------------


def what_runs_where(service: Service) -> list[dict[str, Any]]:
    """Per environment of the service's project, in order: the release each of the service's
    workflows runs there now (the rows marked current; two queries at any history size)."""
    current = (
        Release.objects.filter(service=service, is_current=True)
        .select_related("environment", "service", "workflow", "execution", "deployed_by")
        .order_by("created_at", "id")
    )
    by_environment: dict[int, list[Release]] = {}
    for release in current:
        by_environment.setdefault(release.environment_id, []).append(release)
    return [
        {"environment": environment, "releases": by_environment.get(environment.pk, [])}
        for environment in service.project.environments.order_by("order", "name")
    ]


# --- manifests, for the approval card's diff ------------------------------------------------


def public_manifest(spec: DeploySpec) -> str:
    """The manifests a deploy applies, as YAML, with every Secret's values shown as `***`
    (registry credentials and secret variables never leave the worker)."""
    documents = []
    for manifest in build_manifests(spec):
        if manifest.get("kind") == "Secret":
            for key in ("data", "stringData"):
                if manifest.get(key):
                    manifest[key] = {name: "***" for name in manifest[key]}
        documents.append(manifest)
    return yaml.safe_dump_all(documents, sort_keys=True)


def planned_manifest(execution: Execution, stage: StageRun, current: Release | None) -> str:
    """The manifests the waiting deploy stage would apply now (the workflow's settings today,
    the run's image), secret values as `***`; "" if it cannot be rendered."""
    workflow, environment = execution.workflow, stage.environment
    if environment is None or not execution.image:
        return ""
    service = workflow.service
    base = service.name if workflow.is_default else object_name(service.name, workflow.name)
    if environment.target != TargetKind.KUBERNETES:
        base = object_name(service.project.name, base, environment.name)
    runtime, secret_keys = {}, set()
    for var in workflow.variables.all():
        if var.scope in ("runtime", "both"):
            runtime[var.key] = "***" if var.is_secret else var.value
            if var.is_secret:
                secret_keys.add(var.key)
    try:
        spec = deploy_spec(
            workflow=workflow,
            environment=environment,
            name=base,
            image=execution.image,
            digest=execution.image_digest,
            commit=execution.commit_sha,
            execution_id=execution.pk,
            runtime_env=runtime,
            secret_keys=secret_keys,
        )
    except Exception:  # a setting the deploy itself would refuse: the deploy says why
        return ""
    if environment.target != TargetKind.KUBERNETES and spec.port:
        port = (current.details.get("host_port") if current else None) or spec.port
        spec = replace(spec, replicas=1, host_port=port, host_ip=settings.DEPLOY_LOCAL_HOST_IP)
    return public_manifest(spec)


def manifest_diff(execution: Execution, stage: StageRun, current: Release | None) -> str:
    """Unified diff from the manifests of the release the environment runs (as recorded when it
    was deployed) to those this run would apply; "" when there is nothing to compare."""
    new = planned_manifest(execution, stage, current)
    old = (current.details or {}).get("manifest", "") if current else ""
    if not new:
        return ""
    before = f"release #{current.pk}" if current else "nothing deployed"
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=before,
            tofile=f"run #{execution.number}",
        )
    )
