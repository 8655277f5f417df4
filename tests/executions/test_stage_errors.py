"""Bad input on real parts: each ends the run with the right status and one line saying why,
and leaves nothing behind in the engine."""

from __future__ import annotations

import time

import pytest

from executions.models import RefKind
from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from tests import base
from tests.executions import leftovers, log_text, make_git_workflow, run_now, stage
from tests.realparts import sample_app_files, unique_name
from workflows.models import Service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def assert_ended(execution, status: str, stage_kind: str, reason: str) -> None:
    assert (execution.status, execution.status_reason) == (status, reason)
    failed = stage(execution, stage_kind)
    assert failed.status == (StageStatus.ERROR if status == S.ERROR else StageStatus.FAILED)
    assert "\n" not in failed.error
    later = execution.stages.filter(position__gt=failed.position)
    assert set(later.values_list("status", flat=True)) <= {StageStatus.SKIPPED}
    assert f"ERROR: {failed.error}" in log_text(execution)


def test_unreachable_repository(engine, project, registry):
    service = base.make_service(
        project, name=unique_name("gone"), repo_url="http://127.0.0.1:9/x.git"
    )
    execution = run_now(Service.objects.get(pk=service.pk).workflows.get())
    assert execution.status == S.ERROR
    assert execution.status_reason.startswith("Source: cannot reach 127.0.0.1: Failed to connect")
    assert_ended(execution, S.ERROR, "source", execution.status_reason)


def test_unknown_branch(engine, project, registry, git_server):
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=registry)
    execution = run_now(workflow, ref="no-such-branch", ref_kind=RefKind.BRANCH)
    url = workflow.service.repo_url
    reason = f"Source: branch 'no-such-branch' not found in {url}"
    assert_ended(execution, S.FAILED, "source", reason)


def test_unknown_bare_ref(engine, project, registry, git_server):
    # A bare ref is tried as a branch, a tag, then a commit: the reason says all three failed.
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=registry)
    execution = run_now(workflow, ref="no-such-branch")
    url = workflow.service.repo_url
    reason = f"Source: no branch, tag or commit 'no-such-branch' in {url}"
    assert_ended(execution, S.FAILED, "source", reason)


def test_unknown_commit(engine, project, registry, git_server):
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=registry)
    sha = "0123456789abcdef0123456789abcdef01234567"
    execution = run_now(workflow, ref=sha, ref_kind=RefKind.COMMIT)
    url = workflow.service.repo_url
    reason = f"Source: commit '{sha}' not found in {url}"
    assert_ended(execution, S.FAILED, "source", reason)


def test_wrong_git_credentials(engine, project, registry, git_server):
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=registry)
    Service.objects.filter(pk=workflow.service_id).update(git_token="not-the-password")
    workflow.refresh_from_db()
    execution = run_now(workflow)
    url = workflow.service.repo_url
    assert_ended(execution, S.FAILED, "source", f"Source: authentication failed for {url}")
    assert "not-the-password" not in log_text(execution)


def test_missing_dockerfile(engine, project, registry, git_server):
    workflow, _ = make_git_workflow(
        project,
        git_server,
        sample_app_files(),
        registry=registry,
        dockerfile="docker/Web.dockerfile",
    )
    execution = run_now(workflow)
    reason = "Build: Dockerfile not found: 'docker/Web.dockerfile' is not in the repository"
    assert_ended(execution, S.FAILED, "build", reason)


def test_dockerfile_outside_the_checkout(engine, project, registry, git_server):
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=registry)
    workflow.dockerfile = "sub/../../Dockerfile"
    workflow.save()
    execution = run_now(workflow)
    reason = "Build: Dockerfile 'sub/../../Dockerfile' points outside the repository"
    assert_ended(execution, S.FAILED, "build", reason)


def test_failing_run_step(engine, project, registry, git_server):
    marker = unique_name("fail")
    dockerfile = (
        "FROM localhost/busybox:latest\n"
        f'RUN echo "about to fail {marker}" && exit 3\n'
        'RUN echo "never reached"\n'
    )
    files = sample_app_files(extra={"Dockerfile": dockerfile})
    workflow, _ = make_git_workflow(project, git_server, files, registry=registry)
    started = time.time()
    execution = run_now(workflow)
    assert execution.status == S.FAILED
    assert execution.status_reason.startswith("Build: build failed: building at STEP")
    assert "exit status 3" in execution.status_reason
    assert_ended(execution, S.FAILED, "build", execution.status_reason)
    log = log_text(execution)
    assert f"about to fail {marker}" in log
    assert "never reached\n" not in log
    assert leftovers(execution, started, marker) == {"containers": [], "steps": []}


def test_failing_script(engine, project, registry, git_server):
    workflow, _ = make_git_workflow(
        project,
        git_server,
        sample_app_files(),
        registry=registry,
        scripts={"pre_build": "echo checking\nfalse\necho not reached", "post_build": ""},
    )
    started = time.time()
    execution = run_now(workflow)
    assert_ended(
        execution, S.FAILED, "script", "Pre-build script: pre_build script exited with code 1"
    )
    assert "checking" in log_text(execution)
    assert "not reached" not in log_text(execution)
    assert leftovers(execution, started) == {"containers": [], "steps": []}


def test_registry_refuses_credentials(engine, project, git_server):
    wrong = base.make_registry(
        project,
        name="auth-wrong",
        url=engine["ATMOSLY_TEST_AUTH_REGISTRY"],
        username=engine["ATMOSLY_TEST_AUTH_REGISTRY_USER"],
        password="not-the-registry-password",
    )
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=wrong)
    started = time.time()
    execution = run_now(workflow)
    reason = "Push: registry refused the push: unauthorized: authentication required"
    assert_ended(execution, S.FAILED, "push", reason)
    assert "not-the-registry-password" not in log_text(execution)
    assert execution.image == "" and execution.image_digest == ""
    assert leftovers(execution, started) == {"containers": [], "steps": []}


def test_registry_down(engine, project, git_server):
    down = base.make_registry(project, name="down", url="127.0.0.1:9")
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=down)
    execution = run_now(workflow)
    assert execution.status == S.ERROR
    assert execution.status_reason.startswith("Push: cannot reach registry 127.0.0.1:9: ")
    assert "connection refused" in execution.status_reason
    assert_ended(execution, S.ERROR, "push", execution.status_reason)


def test_engine_down(engine, settings, project, registry, git_server, tmp_path):
    dead = f"unix://{tmp_path}/no-engine.sock"
    settings.DOCKER_HOST = dead
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=registry)
    execution = run_now(workflow)
    assert execution.status == S.ERROR
    assert execution.status_reason.startswith(f"Build: image engine unreachable at {dead}: ")
    assert stage(execution, "source").status == StageStatus.SUCCEEDED
    assert_ended(execution, S.ERROR, "build", execution.status_reason)
