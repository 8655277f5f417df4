"""The scheduled task of Cron CD on the local target: each due occurrence of a (workflow,
environment) job runs the job its current release defines (integrations/local_engine/cron.py
says when, and plays the pod)."""

from __future__ import annotations

from typing import Any

from atmosly.errors import Invalid
from executions.models import Release
from executions.services import check_can_run
from integrations.local_engine.cron import run_job


def run_cron_job(workflow_id: int, environment_id: int) -> dict[str, Any]:
    """One run of the job that environment's current release defines. Returns what happened,
    for django-q2's task result: {"skipped": why}, {"pod", "error"}, or {"pod", "release",
    "exit_code", "logs"}."""
    release = (
        Release.objects.filter(workflow_id=workflow_id, environment_id=environment_id)
        .select_related("workflow__service", "environment")
        .first()
    )
    if release is None or "job_pod" not in release.details:
        return {"skipped": "nothing is deployed there"}
    # Each occurrence passes the same check as any run: it pulls with the workflow's registry
    # credentials, which must still be its own project's.
    try:
        check_can_run(None, release.workflow)
    except Invalid as exc:
        problems = "; ".join(e["message"] for e in exc.errors[:2])
        return {"skipped": f"{release.workflow} cannot run: {problems}"}
    result = run_job(release.details, release.workflow)
    return {**result, "release": release.pk} if "logs" in result else result
