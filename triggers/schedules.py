"""What starts work from a schedule: each due occurrence of a Cron CD job.

`integrations.local_engine.cron` keeps the schedule itself (one `ScheduledJob` per (workflow,
environment), the one django-q2 tick `fire_due_jobs` that claims due occurrences and queues
this module's `run_cron_job` by name) and plays the job's pod; this door checks the same rules
as every other door (`executions.services.check_can_run`) before an occurrence runs."""

from __future__ import annotations

from typing import Any

from atmosly.errors import Invalid
from executions.models import Release
from executions.services import check_can_run
from integrations.local_engine.cron import run_job


def run_cron_job(workflow_id: int, environment_id: int) -> dict[str, Any]:
    """django-q2's task for one due occurrence (queued by `fire_due_jobs` as
    `integrations.local_engine.cron.TASK`): one run of the job that environment's current
    release defines. Returns what happened, for the task's result: {"skipped": why},
    {"pod", "error"}, or {"pod", "release", "exit_code", "logs"}."""
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
