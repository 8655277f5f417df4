"""Re-runs through the API on real parts: a whole re-run builds the same commit even after the
branch moved on; a re-run from the failed stage keeps what the stages before it produced (the
checkout, the built and pushed image) and starts at the stage that failed."""

from __future__ import annotations

import pytest

from executions.engine import run_execution, workspace_of
from executions.models import Execution
from executions.status import ExecutionStatus as S
from executions.status import StageStatus
from tests import base
from tests.executions import log_text, make_git_workflow, run_now, stage, start_run
from tests.realparts import sample_app_files, unique_name
from workflows.models import CIVariable

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def rerun(user, execution: Execution, body: dict | None = None) -> Execution:
    """POST /api/executions/<id>/rerun/ as `user`, then the worker's task runs the new run."""
    response = base.client_for(user).post(
        f"/api/executions/{execution.pk}/rerun/", body or {}, format="json"
    )
    assert response.status_code == 201, response.content
    new = Execution.objects.get(pk=response.json()["id"])
    assert new.status == S.PENDING
    run_execution(new.pk)
    new.refresh_from_db()
    return new


def stages_of(execution: Execution) -> list[tuple[str, str, int | None]]:
    return [
        (s.name, s.status, s.output.get("reused_from"))
        for s in execution.stages.order_by("position")
    ]


def test_whole_rerun_builds_the_same_commit_after_the_branch_moved(
    engine, users, project, registry, git_server
):
    workflow, sha = make_git_workflow(
        project, git_server, sample_app_files(run_steps=1), registry=registry
    )
    first = run_now(workflow)
    assert first.status == S.SUCCEEDED, first.status_reason
    newer = git_server.commit(
        workflow.service.name, {"index.html": "<p>newer</p>\n"}, message="newer"
    )

    again = rerun(users["bob"], first)

    assert again.status == S.SUCCEEDED, again.status_reason
    assert (again.rerun_of_id, again.trigger, again.number) == (first.pk, "rerun", 2)
    assert again.trigger_detail == f"re-run of #{first.number}"
    assert (again.commit_sha, again.branch, again.image) == (sha, "main", first.image)
    assert all(reused is None for _, _, reused in stages_of(again))
    log = log_text(again)
    assert "$ git clone" in log or "$ git fetch" in log
    assert f"Checked out {sha[:12]}: init" in log
    assert newer[:12] not in log


def test_rerun_from_a_failed_post_push_script_reuses_the_pushed_image(
    engine, users, project, registry, git_server
):
    marker = unique_name("reuse")
    workflow, sha = make_git_workflow(
        project,
        git_server,
        sample_app_files(run_steps=1, marker=marker),
        registry=registry,
        scripts={"post_push": 'echo "RELEASE_OK is $RELEASE_OK"\ntest "$RELEASE_OK" = yes'},
    )
    variable = CIVariable.objects.create(
        workflow=workflow, key="RELEASE_OK", value="no", scope="runtime"
    )
    first = run_now(workflow)
    assert first.status == S.FAILED
    assert first.status_reason == "Post-push script: post_push script exited with code 1"
    assert "RELEASE_OK is no" in log_text(first)
    variable.value = "yes"
    variable.save()

    again = rerun(users["bob"], first, {"from_failed": True})

    assert again.status == S.SUCCEEDED, again.status_reason
    assert again.trigger_detail == f"re-run of #{first.number} from the failed stage"
    assert stages_of(again) == [
        ("Source", StageStatus.SUCCEEDED, first.number),
        ("Build", StageStatus.SUCCEEDED, first.number),
        ("Push", StageStatus.SUCCEEDED, first.number),
        ("Post-push script", StageStatus.SUCCEEDED, None),
    ]
    assert stage(again, "push").output["image_digest"] == first.image_digest
    assert (again.commit_sha, again.image, again.image_digest) == (
        sha,
        first.image,
        first.image_digest,
    )
    log = log_text(again)
    assert "$ git" not in log  # no clone
    assert "STEP 1/" not in log and marker not in log  # no build
    assert "Pushing" not in log  # no push
    assert "RELEASE_OK is yes" in log


def test_rerun_from_a_failed_build_builds_in_the_kept_checkout(
    engine, users, project, registry, git_server
):
    dockerfile = (
        "FROM localhost/busybox:latest\n"
        "ARG READY\n"
        'RUN echo "READY is $READY" && test "$READY" = yes\n'
        "COPY index.html /www/index.html\n"
    )
    # Cache off: a layer another run built with READY=yes would print nothing here.
    workflow, sha = make_git_workflow(
        project,
        git_server,
        sample_app_files(extra={"Dockerfile": dockerfile}),
        registry=registry,
        cache_enabled=False,
    )
    variable = CIVariable.objects.create(workflow=workflow, key="READY", value="no", scope="build")
    first = run_now(workflow)
    assert first.status == S.FAILED
    assert first.status_reason.startswith("Build: build failed:"), first.status_reason
    assert workspace_of(first).joinpath("src", "Dockerfile").exists()  # kept for a re-run
    variable.value = "yes"
    variable.save()

    again = rerun(users["alice"], first, {"from_failed": True})

    assert again.status == S.SUCCEEDED, again.status_reason
    assert stages_of(again) == [
        ("Source", StageStatus.SUCCEEDED, first.number),
        ("Build", StageStatus.SUCCEEDED, None),
        ("Push", StageStatus.SUCCEEDED, None),
    ]
    log = log_text(again)
    assert f"Continuing in the checkout of #{first.number}" in log
    assert "$ git" not in log
    assert "READY is yes" in log.splitlines()
    assert again.commit_sha == sha and again.image.endswith(f":{sha}")
    # The checkout moved to the re-run and went with it when it succeeded.
    assert not workspace_of(first).exists() and not workspace_of(again).exists()


def test_rerun_api_refuses(workflow, users):
    from executions.services import do_terminate

    pending = start_run(workflow)  # nobody runs it: no worker in this test
    url = f"/api/executions/{pending.pk}/rerun/"
    bob = base.client_for(users["bob"])
    response = bob.post(url, {}, format="json")
    assert response.status_code == 409
    assert "has not ended" in response.json()["detail"]

    do_terminate(pending)  # Pending → Terminated at once: it has ended
    response = bob.post(url, {"from_failed": "yes"}, format="json")
    assert response.status_code == 400
    assert "from_failed" in response.content.decode()
    assert base.client_for(users["carol"]).post(url, {}, format="json").status_code == 403
    assert base.client_for(users["erin"]).post(url, {}, format="json").status_code == 404
    assert Execution.objects.filter(workflow=workflow).count() == 1  # none of these made a run

    response = bob.post(url, {"from_failed": False}, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    assert response.json()["trigger"] == "rerun"
