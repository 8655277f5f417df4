"""DORA's four key metrics for one service in one environment over a period.

Definitions follow DORA (dora.dev, "DORA's software delivery metrics"), measured on what this
product records:

- **Deployment frequency**: successful deployments (releases that are not rollbacks) in the
  period, per day.
- **Lead time for changes**: from the commit (its author date, which Source stores) to the
  release running it, median over the period's releases.
- **Change failure rate**: deployments that failed or needed remediation, divided by all
  deployments. A deployment is a deploy stage that ended (succeeded, failed or error) in a run
  that is not a rollback; it failed if its stage failed, or if the next release of that
  environment was a rollback (someone had to go back).
- **Time to restore**: from the failure (a failed deploy stage's start, or a rolled-back
  release going live) to the next release in that environment (the rollback, or a fixed
  release), median over the period's failures. Failures not restored yet are counted apart.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Q

from executions.models import Release, StageKind, StageRun, Trigger
from executions.status import StageStatus

if TYPE_CHECKING:
    from workflows.models import Environment, Service

PERIOD_DAYS = {"7d": 7, "30d": 30, "90d": 90}


def median_seconds(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def commit_times(releases: list[Release]) -> dict[int, datetime]:
    """Release id → the author date of its commit, from the Source output of its run."""
    wanted = {r.execution_id: r for r in releases if r.commit_sha}
    found: dict[int, datetime] = {}
    sources = StageRun.objects.filter(
        execution_id__in=wanted.keys(), kind=StageKind.SOURCE
    ).values_list("execution_id", "output")
    for execution_id, output in sources:
        release = wanted[execution_id]
        for commit in (output or {}).get("commits") or []:
            if commit.get("sha") == release.commit_sha and commit.get("date"):
                found[release.pk] = datetime.fromisoformat(commit["date"])
                break
    return found


def dora_metrics(
    service: Service, environment: Environment, until: datetime, days: int = 30
) -> dict[str, Any]:
    """The four metrics for `service` in `environment` over the `days` before `until`:
    `period` {since, until, days}; `deployments`, `successful_deployments`,
    `deployment_frequency_per_day`; `lead_time_seconds` (median) with `lead_time_samples`;
    `change_failures`, `change_failure_rate` (0..1, None without deployments);
    `time_to_restore_seconds` (median), `restored`, `unrestored`. Queries: four."""
    since = until - timedelta(days=days)
    in_env = Release.objects.filter(service=service, environment=environment)
    # Every release of the environment up to `until`, to find what followed each one.
    timeline = list(in_env.filter(created_at__lt=until).order_by("created_at", "id"))
    following = {
        r.pk: (timeline[i + 1] if i + 1 < len(timeline) else None) for i, r in enumerate(timeline)
    }
    after = list(in_env.filter(created_at__gte=until).order_by("created_at", "id")[:1])
    if timeline:
        following[timeline[-1].pk] = after[0] if after else None

    releases = [r for r in timeline if r.created_at >= since and not r.is_rollback]
    attempts = list(
        StageRun.objects.filter(
            kind=StageKind.DEPLOY,
            environment=environment,
            execution__workflow__service=service,
            status__in=[StageStatus.SUCCEEDED, StageStatus.FAILED, StageStatus.ERROR],
            finished_at__gte=since,
            finished_at__lt=until,
        ).exclude(execution__trigger=Trigger.ROLLBACK)
    )

    def next_release_after(moment: datetime) -> Release | None:
        return next((r for r in timeline if r.created_at > moment), after[0] if after else None)

    restore: list[float] = []
    unrestored = 0
    failures = 0
    for stage in attempts:
        if stage.status == StageStatus.SUCCEEDED:
            continue
        failures += 1
        failed_at = stage.started_at or stage.finished_at
        assert failed_at is not None  # finished_at is filtered on above
        back = next_release_after(failed_at)
        if back is None:
            unrestored += 1
        else:
            restore.append((back.created_at - failed_at).total_seconds())
    for release in releases:
        nxt = following.get(release.pk)
        if nxt is not None and nxt.is_rollback:
            failures += 1
            restore.append((nxt.created_at - release.created_at).total_seconds())

    committed = commit_times(releases)
    leads = [
        (r.created_at - committed[r.pk]).total_seconds() for r in releases if r.pk in committed
    ]
    deployments = len(attempts)
    return {
        "service": service.name,
        "environment": environment.name,
        "period": {"since": since.isoformat(), "until": until.isoformat(), "days": days},
        "deployments": deployments,
        "successful_deployments": len(releases),
        "deployment_frequency_per_day": round(len(releases) / days, 4),
        "lead_time_seconds": median_seconds(leads),
        "lead_time_samples": len(leads),
        "change_failures": failures,
        "change_failure_rate": round(failures / deployments, 4) if deployments else None,
        "time_to_restore_seconds": median_seconds(restore),
        "restored": len(restore),
        "unrestored": unrestored,
    }


def releases_by_environment(
    service: Service, environment: Environment | None = None
) -> list[dict[str, Any]]:
    """Per environment of the service's project (or just `environment`): its releases newest
    first (up to 50), each marked `current` when it is what its workflow runs there now."""
    environments = service.project.environments.order_by("order", "name")
    if environment is not None:
        environments = environments.filter(pk=environment.pk)
    rows = []
    for env in environments:
        history = list(
            Release.objects.filter(service=service, environment=env)
            .select_related("workflow", "execution", "deployed_by", "rollback_of")
            .order_by("-created_at", "-id")[:50]
        )
        current_of: set[int] = set()
        seen: set[int] = set()
        for release in history:
            if release.workflow_id not in seen:
                seen.add(release.workflow_id)
                current_of.add(release.pk)
        for release in history:
            # For the page and the API, not a field.
            release.current = release.pk in current_of  # type: ignore[attr-defined]
        rows.append({"environment": env, "history": history})
    return rows


def dora_for_service(
    service: Service, until: datetime, days: int, environment: Environment | None = None
) -> list[dict[str, Any]]:
    """`dora_metrics` for each environment of the service's project that it has deployed to."""
    deployed = Release.objects.filter(service=service).values("environment_id")
    environments = service.project.environments.filter(
        Q(pk__in=deployed) | Q(pk=getattr(environment, "pk", None))
    ).order_by("order", "name")
    if environment is not None:
        environments = environments.filter(pk=environment.pk)
    return [dora_metrics(service, env, until, days) for env in environments]
