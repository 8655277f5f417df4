"""Cron CD on the local target: one django-q2 `Schedule` per (workflow, environment) whose task
runs the job of the release deployed there, each time as a real container (a podman pod played
from the CronJob's pod template), honouring the concurrency policy (Allow, Forbid, Replace)."""

from __future__ import annotations

import copy
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from integrations.kubernetes.manifests import object_name

TASK = "integrations.local_engine.cron.run_cron_job"
JOB_LABEL = "workflows.atmosly.io/cron-job"


def schedule_name(workflow, environment) -> str:
    return f"workflows-cron-{workflow.pk}-{environment.pk}"


def schedule_job(workflow, environment, cron: str) -> str:
    from django_q.models import Schedule

    name = schedule_name(workflow, environment)
    schedule, _ = Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": TASK,
            "args": repr((workflow.pk, environment.pk)),
            "schedule_type": Schedule.CRON,
            "cron": cron,
            "repeats": -1,
        },
    )
    schedule.next_run = schedule.calculate_next_run()
    schedule.save(update_fields=["next_run"])
    return name


def unschedule_job(workflow, environment) -> None:
    from django_q.models import Schedule

    Schedule.objects.filter(name=schedule_name(workflow, environment)).delete()


def run_cron_job(workflow_id: int, environment_id: int) -> dict[str, Any]:
    """The scheduled task: one run of the job that environment's current release defines."""
    from executions.models import Release
    from integrations.kubernetes.spec import pull_auth, registry_insecure
    from integrations.local_engine.podman import Podman, PodmanError

    release = (
        Release.objects.filter(workflow_id=workflow_id, environment_id=environment_id)
        .select_related("workflow__service", "environment")
        .first()
    )
    if release is None or "job_pod" not in release.details:
        return {"skipped": "nothing is deployed there"}
    # Each occurrence passes the same check as any run: it pulls with the workflow's registry
    # credentials, which must still be its own project's.
    from rest_framework.exceptions import ValidationError

    from atmosly.api_errors import flatten_errors
    from executions.services import check_can_run

    try:
        check_can_run(None, release.workflow)
    except ValidationError as exc:
        problems = "; ".join(e["message"] for e in flatten_errors(exc.detail)[:2])
        return {"skipped": f"{release.workflow} cannot run: {problems}"}
    podman = Podman()
    pod = copy.deepcopy(release.details["job_pod"])
    job = pod["metadata"]["labels"][JOB_LABEL]
    running = [p for p in podman.pods(f"{JOB_LABEL}={job}") if p.get("Status") == "Running"]
    policy = release.details.get("concurrency", "Forbid")
    if running and policy == "Forbid":
        return {"skipped": f"the previous run of {job} is still running (Forbid)"}
    if policy == "Replace":
        for old in running:
            podman.stop_pod(old["Id"], 1)
            podman.remove_pod(old["Id"])
    pod["metadata"]["name"] = object_name(job, timezone.now().strftime("%Y%m%d%H%M%S%f"))
    image = pod["spec"]["containers"][0]["image"]
    workflow = release.workflow
    try:
        report = podman.play(
            pod, pull_auth(workflow, image), not registry_insecure(workflow, image)
        )
    except PodmanError as exc:
        return {"pod": pod["metadata"]["name"], "error": str(exc)}
    pod_id = report["Pods"][0]["ID"]
    container_id = report["Pods"][0]["Containers"][0]
    deadline = time.monotonic() + getattr(settings, "DEPLOY_CRON_JOB_SECONDS", 3600)
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
        "release": release.pk,
        "exit_code": None if state.get("Running") else state.get("ExitCode"),
        "logs": logs,
    }
