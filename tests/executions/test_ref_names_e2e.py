"""Refs are data, end to end on real parts (test git server, engine): a branch named like a
commit id, a 250-character branch and a tag reach the script whole, with the kind the run was
asked for; the run page names the branch or tag of a re-run, not the commit it is pinned to."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from executions.engine import run_execution
from executions.models import Execution
from executions.status import ExecutionStatus as S
from tests.base import client_for
from tests.executions import log_text, make_git_workflow
from tests.realparts import run_git, sample_app_files

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

SCRIPT = 'echo "BRANCH=[$WORKFLOWS_BRANCH] TAG=[$WORKFLOWS_TAG] KIND=[$WORKFLOWS_REF_KIND]"'
LONG = "feature/" + "x" * 230 + "-long-branch"  # 250 characters


@pytest.fixture
def repo(engine, project, registry, git_server):
    workflow, sha = make_git_workflow(
        project,
        git_server,
        sample_app_files(run_steps=0),
        registry,
        scripts={"pre_build": SCRIPT},
    )
    name = workflow.service.repo_url.rsplit("/", 1)[-1].removesuffix(".git")
    return {"workflow": workflow, "name": name, "main": sha}


def started(user, workflow, **body) -> Execution:
    answer = client_for(user).post(f"/api/workflows/{workflow.pk}/run/", body, format="json")
    assert answer.status_code == 201, answer.content
    run_execution(answer.json()["id"])
    execution = Execution.objects.get(pk=answer.json()["id"])
    assert execution.status == S.SUCCEEDED, execution.status_reason
    return execution


def header(user, execution: Execution) -> str:
    """The run page's line under the status: trigger, ref, commit."""
    client = Client()
    client.force_login(user)
    page = client.get(f"/executions/{execution.pk}/")
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    line = text.split('data-testid="run-ref-line">', 1)[1].split("</span>", 1)[0]
    return " ".join(line.split())


@pytest.mark.parametrize("branch", ["cafe1234", LONG])
def test_a_branch_reaches_the_script_and_the_page_whole(repo, git_server, users, branch):
    assert len(LONG) == 250
    sha = git_server.commit(repo["name"], {"branch.txt": branch}, branch=branch)
    execution = started(users["alice"], repo["workflow"], branch=branch)
    assert (execution.branch, execution.ref_kind, execution.commit_sha) == (branch, "branch", sha)
    assert f"BRANCH=[{branch}] TAG=[] KIND=[branch]" in log_text(execution)

    again = client_for(users["alice"]).post(f"/api/executions/{execution.pk}/rerun/")
    assert again.status_code == 201, again.content
    rerun = Execution.objects.get(pk=again.json()["id"])
    run_execution(rerun.pk)
    rerun.refresh_from_db()
    assert rerun.status == S.SUCCEEDED, rerun.status_reason
    assert f"BRANCH=[{branch}] TAG=[] KIND=[branch]" in log_text(rerun)
    line = header(users["alice"], rerun)
    assert f"branch <code>{branch}</code>" in line, line
    # Pinned to the commit, named by its branch (the commit shown short; the image's tag may
    # hold it whole, so only the part before the commit is checked).
    assert sha not in line.split(" · commit")[0], line
    assert f"commit <code>{sha[:12]}</code>" in line


def test_a_tag_reaches_the_script_and_the_page(repo, git_server, users):
    bare = str(git_server.bare_path(repo["name"]))
    run_git("--git-dir", bare, "tag", "v1.10", repo["main"])
    execution = started(users["alice"], repo["workflow"], tag="v1.10")
    assert (execution.tag, execution.ref_kind) == ("v1.10", "tag")
    assert "BRANCH=[] TAG=[v1.10] KIND=[tag]" in log_text(execution)
    line = header(users["alice"], execution)
    assert "tag <code>v1.10</code>" in line, line
    assert repo["main"] not in line.split(" · commit")[0], line
