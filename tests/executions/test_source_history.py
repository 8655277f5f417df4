"""Source keeps the commits up to the checkout (for the approval card), through a real clone
from the git server; CI runs, which never deploy, do not fetch any history."""

from __future__ import annotations

import pytest

from executions.status import ExecutionStatus as S
from tests.executions import make_git_workflow, run_now, stage

pytestmark = pytest.mark.django_db(transaction=True)


def test_deploying_workflow_keeps_history_newest_first(engine, project, registry, git_server):
    # No Dockerfile: Build fails at once, after Source has done its part.
    workflow, first = make_git_workflow(
        project, git_server, {"README.md": "one\n"}, registry=registry, pipeline_type="app_cd"
    )
    name = workflow.service.name
    second = git_server.commit(name, {"README.md": "two\n"}, message="Add cart")
    third = git_server.commit(name, {"README.md": "three\n"}, message="Fix login")
    execution = run_now(workflow)
    assert execution.status == S.FAILED
    commits = stage(execution, "source").output["commits"]
    assert [c["sha"] for c in commits] == [third, second, first]
    assert [c["subject"] for c in commits[:2]] == ["Fix login", "Add cart"]
    assert commits[0]["author"] == "Workflows Tests" and commits[0]["date"]


def test_ci_workflow_stores_no_history(engine, project, registry, git_server):
    workflow, _ = make_git_workflow(project, git_server, {"README.md": "x\n"}, registry=registry)
    execution = run_now(workflow)
    assert stage(execution, "source").output["commits"] == []
