"""A SonarQube analysis of a checkout, judged by the project's quality gate.

With the `sonar-scanner` CLI on the worker (setting SONARQUBE_SCANNER, default `sonar-scanner`
on PATH): it uploads the analysis, its Compute Engine task is awaited, and the gate of that very
analysis decides. The server URL and token reach the CLI through SONAR_HOST_URL / SONAR_TOKEN in
its environment, never its arguments. Without the CLI nothing is uploaded: the log says so and
the gate of the project's last analysis (made elsewhere) is checked instead.

The project key is `<project>_<service>` (slugified), the key the analysis is made under.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.text import slugify

from integrations.scanners import Run, ScanJob
from integrations.sonarqube.client import SonarQube, SonarQubeError

if TYPE_CHECKING:
    from workflows.models import Workflow

TOOL = "sonarqube"
LABEL = "SonarQube"
COMPARATORS = {"GT": ">", "LT": "<", "EQ": "=", "NE": "!="}


def project_key(workflow: Workflow) -> str:
    service = workflow.service
    return f"{slugify(service.project.name)}_{slugify(service.name)}"


def scanner_cli() -> str | None:
    return shutil.which(settings.SONARQUBE_SCANNER or "sonar-scanner")


def check() -> list[str]:
    """Refuses a server that is not configured; the token is to be masked."""
    token = SonarQube.from_settings().token
    return [token] if token else []


def scan(job: ScanJob) -> dict[str, Any]:
    """Analyses the run's checkout."""
    client, run = SonarQube.from_settings(), job.run
    src, key, log = job.src, project_key(job.workflow), job.log
    cli = scanner_cli()
    details: dict[str, Any] = {"server": client.url, "project_key": key}
    if cli:
        log(f"Submitting the analysis of {key} to {client.url} with {cli}")
        workdir = job.workspace / "sonar"
        task = submit(client, cli, src, run, key=key, workdir=workdir, cancelled=job.cancelled)
        details.update(analysis_submitted=True, analysis_id=task.get("analysisId", ""))
        status = client.quality_gate(analysis_id=task.get("analysisId", ""))
    else:
        log(
            "sonar-scanner CLI not found on this worker: no analysis submitted; checking the "
            f"quality gate of the last analysis of {key}"
        )
        details["analysis_submitted"] = False
        status = client.quality_gate(project_key=key)
    gate = status.get("status", "NONE")
    conditions = status.get("conditions") or []
    failed = [describe(c) for c in conditions if c.get("status") == "ERROR"]
    details.update(quality_gate=gate, conditions=conditions, failed_conditions=failed)
    if gate == "NONE":
        log(f"SonarQube has no quality gate result for {key}")
    blocking = f"SonarQube quality gate failed: {'; '.join(failed)}" if gate == "ERROR" else ""
    return {"tool": TOOL, "version": "", "findings": [], "details": details, "blocking": blocking}


def submit(
    client: SonarQube,
    cli: str,
    src: Path,
    run: Run,
    *,
    key: str,
    workdir: Path,
    cancelled: threading.Event,
) -> dict[str, Any]:
    """Runs sonar-scanner, then waits for the server to process what it uploaded."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        cli,
        f"-Dsonar.projectKey={key}",
        "-Dsonar.sources=.",
        f"-Dsonar.working.directory={workdir}",
    ]
    env = {"SONAR_HOST_URL": client.url, "SONAR_TOKEN": client.token}
    if os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    code, out, err = run(argv, cwd=src, env=env)
    if code != 0:
        last = next((x for x in reversed((out + err).splitlines()) if x.strip()), "no output")
        raise SonarQubeError(f"sonar-scanner failed (exit code {code}): {last.strip()[:300]}")
    task_id = read_properties(workdir / "report-task.txt").get("ceTaskId", "")
    if not task_id:
        raise SonarQubeError("sonar-scanner wrote no report-task.txt with a ceTaskId", system=True)
    return client.wait_for_task(task_id, cancelled)


def read_properties(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def describe(condition: dict[str, Any]) -> str:
    """`new_coverage = 45.0 (error if < 80)`."""
    op = COMPARATORS.get(condition.get("comparator", ""), condition.get("comparator", "?"))
    actual = condition.get("actualValue", "?")
    return f"{condition.get('metricKey', '?')} = {actual} (error if {op} {condition.get('errorThreshold', '?')})"
