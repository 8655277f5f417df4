"""The Security scan stage with detect-secrets and Trivy over a real checkout: a repository with
AWS credentials and a Dockerfile running as root fails the run at the scan (fail on high) with
both reports saved, and passes to Build and Push when the workflow only reports (never); a
clean repository passes; no secret value reaches a report, the log or the API; reports download
for members only."""

from __future__ import annotations

import json

import pytest

from executions.models import Report
from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from tests import base
from tests.executions import log_text, make_git_workflow, run_now, stage
from tests.scans import FAKE_VALUES, clean_files, leaky_files

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

BOTH = {"scan_detect_secrets": True, "scan_trivy": True}


def download_url(report: Report) -> str:
    return f"/api/executions/{report.execution_id}/reports/{report.pk}/download/"


def stages(execution) -> list[tuple[str, str]]:
    return list(execution.stages.values_list("kind", "status"))


def test_findings_at_or_above_high_fail_the_run_before_build(
    engine, project, registry, git_server, users
):
    workflow, _ = make_git_workflow(
        project, git_server, leaky_files(), registry=registry, scan_fail_on="high", **BOTH
    )
    execution = run_now(workflow)

    assert execution.status == S.FAILED, execution.status_reason
    assert stages(execution) == [
        ("source", StageStatus.SUCCEEDED),
        ("scan", StageStatus.FAILED),
        ("build", StageStatus.SKIPPED),
        ("push", StageStatus.SKIPPED),
    ]
    # detect-secrets: 2 AWS keys, and the secret key again as high-entropy string and keyword
    # (all high); Trivy: the 2 AWS keys (critical) and DS-0002 (root user, high).
    assert execution.status_reason == (
        "Security scan: 7 findings at or above high (2 critical, 5 high; detect-secrets 4, trivy 3)"
    )
    reports = {r.kind: r for r in execution.reports.all()}
    assert set(reports) == {"detect-secrets", "trivy"}
    assert all(r.stage_run == stage(execution, "scan") for r in reports.values())
    secrets = reports["detect-secrets"]
    assert secrets.summary["counts"] == {"critical": 0, "high": 4, "medium": 0, "low": 0}
    found = json.loads(secrets.content)["findings"]
    assert {(f["type"], f["file"], f["line"]) for f in found} == {
        ("AWS Access Key", "app/settings.py", 1),
        ("AWS Access Key", "app/settings.py", 2),
        ("Base64 High Entropy String", "app/settings.py", 2),
        ("Secret Keyword", "app/settings.py", 2),
    }
    assert all(len(f["hashed_secret"]) == 40 for f in found)
    trivy = reports["trivy"]
    assert trivy.summary["counts"] == {"critical": 2, "high": 1, "medium": 1, "low": 1}
    trivy_ids = {(f["type"], f["id"], f["severity"]) for f in json.loads(trivy.content)["findings"]}
    assert {
        ("secret", "aws-access-key-id", "critical"),
        ("secret", "aws-secret-access-key", "critical"),
        ("misconfig", "DS-0002", "high"),
    } <= trivy_ids

    log = log_text(execution)
    assert "SEVERITY" in log and "DS-0002" in log and "app/settings.py:1" in log
    carol = base.client_for(users["carol"])
    api = [
        carol.get(f"/api/executions/{execution.pk}/").content,
        carol.get(f"/api/executions/{execution.pk}/reports/").content,
        carol.get(f"/api/executions/{execution.pk}/logs/").content,
        carol.get(download_url(trivy)).content,
        carol.get(download_url(secrets)).content,
    ]
    for value in FAKE_VALUES:
        assert value not in log
        assert all(value not in r.content for r in reports.values())
        assert all(value.encode() not in body for body in api)
    listed = carol.get(f"/api/executions/{execution.pk}/reports/").json()
    assert {r["kind"]: r["summary"]["total"] for r in listed} == {"detect-secrets": 4, "trivy": 5}


def test_fail_on_never_reports_and_goes_on_to_build_and_push(engine, project, registry, git_server):
    workflow, _ = make_git_workflow(
        project, git_server, leaky_files(), registry=registry, scan_fail_on="never", **BOTH
    )
    execution = run_now(workflow)

    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert [s for _, s in stages(execution)] == [StageStatus.SUCCEEDED] * 4
    assert execution.image_digest
    summary = stage(execution, "scan").output["scan_summary"]
    assert summary["detect-secrets"]["total"] == 4
    assert summary["trivy"]["counts"]["critical"] == 2
    assert "reports" not in stage(execution, "scan").output
    assert execution.reports.count() == 2


def test_clean_repository_passes(engine, project, registry, git_server):
    workflow, _ = make_git_workflow(
        project, git_server, clean_files(), registry=registry, scan_fail_on="high", **BOTH
    )
    execution = run_now(workflow)

    assert execution.status == S.SUCCEEDED, execution.status_reason
    reports = {r.kind: r.summary for r in execution.reports.all()}
    assert reports["detect-secrets"]["total"] == 0
    # Left below the threshold: the ':latest' base (DS-0001) and no HEALTHCHECK (DS-0026).
    assert reports["trivy"]["counts"] == {"critical": 0, "high": 0, "medium": 1, "low": 1}
    assert "DS-0001" in log_text(execution)


def test_a_threshold_of_critical_lets_high_findings_through(engine, project, registry, git_server):
    files = {**clean_files(), "Dockerfile": leaky_files()["Dockerfile"]}  # root user only
    workflow, _ = make_git_workflow(
        project, git_server, files, registry=registry, scan_fail_on="critical", scan_trivy=True
    )
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert execution.reports.get().summary["counts"]["high"] == 1


def test_report_download_needs_view_permission_and_membership(project, users, workflow):
    from executions.services import do_create_execution

    execution = do_create_execution(workflow, ref="main", trigger="manual")
    report = Report.objects.create(
        execution=execution,
        kind="trivy",
        filename="web-1-trivy.json",
        content='{"findings": []}',
        summary={"total": 0},
    )
    url = download_url(report)

    response = base.client_for(users["carol"]).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="web-1-trivy.json"'
    assert response.content == b'{"findings": []}'
    assert base.client_for(users["erin"]).get(url).status_code == 404
    assert base.client_for(users["frank"]).get(url).status_code == 403  # member, no role
    assert base.client_for(None).get(url).status_code in (401, 403)
    other = do_create_execution(workflow, ref="main", trigger="manual")
    wrong_execution = f"/api/executions/{other.pk}/reports/{report.pk}/download/"
    assert base.client_for(users["carol"]).get(wrong_execution).status_code == 404
