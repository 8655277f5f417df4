"""Cron CD on the local target: one `ScheduledJob` per (workflow, environment), in the workflow's
time zone; one django-q2 schedule (`fire_due_jobs`, every minute) queues each due occurrence on
its own for `triggers.schedules.run_cron_job`, which checks the workflow may still run and then
plays the job here (`run_job`: a podman pod from the CronJob's pod template), honouring the
concurrency policy (Allow, Forbid, Replace).

django-q2's own CRON schedules are not used per job: its scheduler handles all schedules in one
transaction, so one expression it cannot work out stops every schedule of the installation, and
it reads cron in the server's zone only."""

from __future__ import annotations

import copy
import logging
import time
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from integrations.kubernetes.manifests import object_name
from integrations.kubernetes.spec import pull_auth, registry_insecure
from integrations.local_engine.podman import Podman, PodmanError

# Re-exported: the schedule arithmetic lives apart so the workflow document can use it without
# importing what runs a job.
from integrations.local_engine.schedule import CronScheduleError, next_runs
from integrations.models import ScheduledJob

if TYPE_CHECKING:
    from workflows.models import Environment, Workflow

# Queued by name (django-q2 stores the dotted path): the schedule door checks the run's rules.
TASK = "triggers.schedules.run_cron_job"
TICK = "integrations.local_engine.cron.fire_due_jobs"
TICK_NAME = "workflows-cron-tick"
JOB_LABEL = "workflows.atmosly.io/cron-job"
logger = logging.getLogger(__name__)


def schedule_name(workflow: Workflow, environment: Environment) -> str:
    return f"workflows-cron-{workflow.pk}-{environment.pk}"


def schedule_job(
    workflow: Workflow, environment: Environment, cron: str, time_zone: str = "UTC"
) -> str:
    """Schedules the job of (workflow, environment) on `cron` in `time_zone`. The first run time
    is worked out before anything is written: a schedule that never fires raises
    CronScheduleError and leaves any previous schedule as it was."""
    first = next_runs(cron, time_zone, timezone.now(), 1)[0]
    ensure_tick()
    ScheduledJob.objects.update_or_create(
        workflow=workflow,
        environment=environment,
        defaults={
            "cron": cron,
            "time_zone": time_zone,
            "next_run_at": first,
            "last_error": "",
        },
    )
    return schedule_name(workflow, environment)


def ensure_tick() -> None:
    """The one django-q2 schedule: every minute, `fire_due_jobs`. Its expression is fixed, so
    django-q2's scheduler (one transaction for all its schedules) never meets a user's."""
    if not Schedule.objects.filter(name=TICK_NAME).exists():
        tick = Schedule(
            name=TICK_NAME, func=TICK, schedule_type=Schedule.CRON, cron="* * * * *", repeats=-1
        )
        tick.next_run = tick.calculate_next_run()
        tick.save()


def unschedule_job(workflow: Workflow, environment: Environment) -> None:
    ScheduledJob.objects.filter(workflow=workflow, environment=environment).delete()


def fire_due_jobs(now: datetime | None = None) -> dict[str, Any]:
    """The scheduler's task, every minute: starts each scheduled job that is due, each on its
    own. A job whose next time cannot be worked out is stopped with the reason (`last_error`,
    shown on the workflow page) and never holds up another.

    Returns {"started": [job ids], "failed": {job id: reason}}."""
    now = now or timezone.now()
    started, failed = [], {}
    due = ScheduledJob.objects.filter(next_run_at__lte=now).order_by("next_run_at", "pk")
    for job in due.values_list(
        "pk", "workflow_id", "environment_id", "cron", "time_zone", "next_run_at"
    ):
        pk, workflow_id, environment_id, cron, zone, due_at = job
        assert due_at is not None  # the filter above
        try:
            following = next_runs(cron, zone, max(now, due_at), 1)[0]
        except CronScheduleError as exc:
            failed[pk] = str(exc)
            ScheduledJob.objects.filter(pk=pk, next_run_at=due_at).update(
                next_run_at=None, last_error=str(exc)[:500]
            )
            logger.warning("cron job %s stopped: %s", pk, exc)
            continue
        with transaction.atomic():
            # Claimed by one conditional UPDATE: two schedulers never start the same run twice.
            claimed = ScheduledJob.objects.filter(pk=pk, next_run_at=due_at).update(
                next_run_at=following, last_run_at=now, last_error=""
            )
            if claimed == 1:
                started.append(pk)
                group = f"workflows-cron-{workflow_id}-{environment_id}"
                transaction.on_commit(
                    partial(
                        async_task, TASK, workflow_id, environment_id, q_options={"group": group}
                    )
                )
    return {"started": started, "failed": failed}


def run_job(details: dict[str, Any], workflow: Workflow) -> dict[str, Any]:
    """One run of the job a local Cron CD release defines (`details` holds its `job_pod` and
    `concurrency` policy), pulling with `workflow`'s registry credentials: a pod played, waited
    for (DEPLOY_CRON_JOB_SECONDS at most), its last 50 log lines read, then removed. Called by
    the scheduled task (`triggers.schedules.run_cron_job`); raises EngineError when podman is down."""
    podman = Podman()
    pod = copy.deepcopy(details["job_pod"])
    job = pod["metadata"]["labels"][JOB_LABEL]
    running = [p for p in podman.pods(f"{JOB_LABEL}={job}") if p.get("Status") == "Running"]
    policy = details.get("concurrency", "Forbid")
    if running and policy == "Forbid":
        return {"skipped": f"the previous run of {job} is still running (Forbid)"}
    if policy == "Replace":
        for old in running:
            podman.stop_pod(old["Id"], 1)
            podman.remove_pod(old["Id"])
    pod["metadata"]["name"] = object_name(job, timezone.now().strftime("%Y%m%d%H%M%S%f"))
    image = pod["spec"]["containers"][0]["image"]
    try:
        report = podman.play(
            pod, pull_auth(workflow, image), not registry_insecure(workflow, image)
        )
    except PodmanError as exc:
        return {"pod": pod["metadata"]["name"], "error": str(exc)}
    pod_id = report["Pods"][0]["ID"]
    container_id = report["Pods"][0]["Containers"][0]
    deadline = time.monotonic() + settings.DEPLOY_CRON_JOB_SECONDS
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = podman.container(container_id).get("State", {})
        if not state.get("Running"):
            break
        time.sleep(0.1)
    logs = podman.logs(container_id, tail=50)
    podman.stop_pod(pod_id, 1)
    podman.remove_pod(pod_id)
    return {
        "pod": pod["metadata"]["name"],
        "exit_code": None if state.get("Running") else state.get("ExitCode"),
        "logs": logs,
    }
