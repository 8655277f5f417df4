"""SonarQube in the Security scan stage, against a double of its Web API (no SonarQube server
can be installed here): not configured is a system error; the quality gate decides (OK passes,
ERROR fails naming its failing conditions); with the sonar-scanner CLI (a double too) the
analysis is uploaded and the gate of that analysis is read; a terminate kills the CLI."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from executions.models import Execution
from executions.services import do_terminate
from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from integrations.sonarqube.scanner import project_key
from tests.executions import log_text, make_git_workflow, run_in_thread, run_now, stage, start_run
from tests.realparts import sample_app_files
from tests.scans.conftest import SONAR_TOKEN

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

FAILING = [
    {
        "status": "ERROR",
        "metricKey": "new_coverage",
        "comparator": "LT",
        "errorThreshold": "80",
        "actualValue": "45.0",
    },
    {
        "status": "ERROR",
        "metricKey": "new_bugs",
        "comparator": "GT",
        "errorThreshold": "0",
        "actualValue": "3",
    },
    {
        "status": "OK",
        "metricKey": "new_duplicated_lines_density",
        "comparator": "GT",
        "errorThreshold": "3",
        "actualValue": "0.0",
    },
]
FAILING_REASON = (
    "Security scan: SonarQube quality gate failed: new_coverage = 45.0 (error if < 80); "
    "new_bugs = 3 (error if > 0)"
)


def sonar_workflow(project, git_server, registry, **fields):
    workflow, _ = make_git_workflow(
        project,
        git_server,
        sample_app_files(run_steps=1),
        registry=registry,
        scan_sonarqube=True,
        **fields,
    )
    return workflow


def executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_not_configured_is_a_system_error(settings, project, registry, git_server):
    settings.SONARQUBE_URL = ""
    execution = run_now(sonar_workflow(project, git_server, registry))
    assert execution.status == S.ERROR
    assert execution.status_reason == (
        "Security scan: SonarQube is not configured (set SONARQUBE_URL and SONARQUBE_TOKEN)"
    )
    assert stage(execution, "scan").status == StageStatus.ERROR
    assert stage(execution, "build").status == StageStatus.SKIPPED


def test_gate_ok_passes(engine, sonar, project, registry, git_server):
    workflow = sonar_workflow(project, git_server, registry)
    key = project_key(workflow)
    sonar.set_gate(key, "OK", [{**FAILING[2]}])
    execution = run_now(workflow)

    assert execution.status == S.SUCCEEDED, execution.status_reason
    report = execution.reports.get(kind="sonarqube")
    assert report.summary["quality_gate"] == "OK"
    assert json.loads(report.content)["details"]["analysis_submitted"] is False
    asked = [r for r in sonar.requests if r["path"] == "/api/qualitygates/project_status"]
    assert [(r["query"], r["auth"]) for r in asked] == [({"projectKey": key}, True)]
    log = log_text(execution)
    assert "sonar-scanner CLI not found on this worker: no analysis submitted" in log
    assert "quality gate OK" in log
    assert SONAR_TOKEN not in log and SONAR_TOKEN not in report.content


def test_gate_error_fails_with_its_conditions(sonar, project, registry, git_server):
    workflow = sonar_workflow(project, git_server, registry)
    sonar.set_gate(project_key(workflow), "ERROR", FAILING)
    execution = run_now(workflow)

    assert execution.status == S.FAILED
    assert execution.status_reason == FAILING_REASON
    assert stage(execution, "build").status == StageStatus.SKIPPED
    report = execution.reports.get(kind="sonarqube")
    assert report.summary["quality_gate"] == "ERROR"
    assert report.summary["failed_conditions"] == 2


def test_wrong_token_and_unknown_project(settings, sonar, project, registry, git_server):
    workflow = sonar_workflow(project, git_server, registry)
    execution = run_now(workflow)  # no gate set: the project is unknown to the server
    assert execution.status == S.FAILED
    assert execution.status_reason == (
        f"Security scan: SonarQube: Project '{project_key(workflow)}' not found"
    )

    settings.SONARQUBE_TOKEN = "wrong-token"
    execution = run_now(workflow)
    assert execution.status == S.ERROR
    assert execution.status_reason == (
        "Security scan: SonarQube refused the token (401): check SONARQUBE_TOKEN"
    )


def test_scanner_cli_uploads_and_the_gate_of_that_analysis_decides(
    settings, sonar, project, registry, git_server, tmp_path
):
    double = Path(__file__).with_name("sonar_scanner_double.py")
    settings.SONARQUBE_SCANNER = executable(
        tmp_path / "sonar-scanner", f'#!/bin/sh\nexec {sys.executable} {double} "$@"\n'
    )
    workflow = sonar_workflow(project, git_server, registry)
    key = project_key(workflow)
    sonar.set_gate(key, "ERROR", FAILING)
    execution = run_now(workflow)

    assert execution.status == S.FAILED
    assert execution.status_reason == FAILING_REASON
    (task,) = sonar.tasks.values()
    assert task["componentKey"] == key
    assert "Dockerfile" in task["body"]["files"]  # the CLI ran in the checkout
    assert not any(SONAR_TOKEN in arg for arg in task["body"]["argv"])
    paths = [(r["path"], r["auth"]) for r in sonar.requests]
    assert ("/api/ce/submit", True) in paths
    assert ("/api/ce/task", True) in paths
    gate = [r for r in sonar.requests if r["path"] == "/api/qualitygates/project_status"]
    assert gate[-1]["query"] == {"analysisId": task["analysisId"]}
    details = json.loads(execution.reports.get(kind="sonarqube").content)["details"]
    assert details["analysis_submitted"] is True
    assert details["analysis_id"] == task["analysisId"]


def sleeping(seconds: str) -> set[int]:
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == (
                b"sleep\0" + seconds.encode() + b"\0"
            ):
                found.add(int(proc.name))
        except OSError:
            continue
    return found


def test_terminate_kills_the_scanner_process_group(
    settings, sonar, project, registry, git_server, tmp_path
):
    # The child sleep is what must die too: killing only the shell would leave it running.
    settings.SONARQUBE_SCANNER = executable(
        tmp_path / "sonar-scanner", "#!/bin/sh\nsleep 307 &\nwait\n"
    )
    before = sleeping("307")
    execution = start_run(sonar_workflow(project, git_server, registry))
    worker = run_in_thread(execution.pk)
    deadline = time.monotonic() + 60
    while not sleeping("307") - before:
        assert time.monotonic() < deadline, "the scanner never started"
        time.sleep(0.05)
    ours = sleeping("307") - before

    asked = time.monotonic()
    do_terminate(execution)
    worker.join(settings.TERMINATION_GRACE_SECONDS + 10)
    took = time.monotonic() - asked
    execution = Execution.objects.get(pk=execution.pk)
    assert execution.status == S.TERMINATED, execution.status_reason
    assert took < 5
    assert stage(execution, "scan").status == StageStatus.TERMINATED
    assert not sleeping("307") & ours
    assert not worker.is_alive()
