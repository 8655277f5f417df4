"""Refs are data: names stored whole, and their kind taken from where they came from (the push
event, or the field the user filled in), never guessed from their shape."""

from __future__ import annotations

import itertools
import subprocess

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from executions.models import Execution
from integrations.models import TriggeredCommit, WebhookDelivery
from tests.base import client_for, save_document
from tests.webhooks.helpers import (
    GITHUB_REPO,
    ci_document,
    deliver,
    fixture,
    github_push,
    make_hook,
    make_workflow,
    sha_of,
)

pytestmark = pytest.mark.django_db
LONG = "feature/" + "x" * 242  # 250 characters; git allows far longer


@pytest.fixture
def any_branch_hook(project, registry):
    workflow = make_workflow(
        project,
        "shop",
        GITHUB_REPO,
        branches=[{"pattern": "*", "match": "wildcard"}],
        tags=["*"],
    )
    return make_hook(workflow)


def test_a_250_character_branch_is_stored_whole_and_matches_its_rule(project, registry):
    workflow = make_workflow(project, "shop", GITHUB_REPO)
    save_document(
        workflow.service,
        {**ci_document(branches=[{"pattern": LONG, "match": "exact"}]), "name": "ci"},
        workflow,
    )
    hook = make_hook(workflow)
    answer = deliver(hook, "github", github_push(LONG, after=sha_of(1))).json()

    assert answer["outcome"] == "triggered", answer["reason"]
    run = Execution.objects.get()
    assert (run.branch, run.ref, run.ref_kind, run.tag) == (LONG, LONG, "branch", "")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.branch, delivery.ref) == (LONG, f"refs/heads/{LONG}")
    assert TriggeredCommit.objects.get().ref == f"refs/heads/{LONG}"
    assert LONG in run.trigger_detail


def test_a_branch_named_like_a_commit_is_a_branch_and_a_tag_like_a_number_a_tag(
    any_branch_hook,
):
    github_hook = any_branch_hook
    deliver(github_hook, "github", github_push("cafe1234", after=sha_of(1)))
    run = Execution.objects.get()
    assert (run.branch, run.tag, run.ref_kind) == ("cafe1234", "", "branch")

    tag = fixture("github_push_tag")
    tag["ref"], tag["after"] = "refs/tags/v1.10", sha_of(2)
    deliver(github_hook, "github", tag)
    run = Execution.objects.get(number=2)
    assert (run.branch, run.tag, run.ref_kind) == ("", "v1.10", "tag")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"branch": "cafe1234"}, ("cafe1234", "", "branch", "cafe1234", "")),
        ({"branch": LONG}, (LONG, "", "branch", LONG, "")),
        ({"tag": "1.10"}, ("", "1.10", "tag", "1.10", "")),
        ({"commit": sha_of(7)}, ("", "", "commit", sha_of(7), sha_of(7))),
        # A bare ref may be a branch or a tag: the repository says which when Source runs.
        ({"ref": "deadbeef"}, ("", "", "branch_or_tag", "deadbeef", "")),
        ({}, ("main", "", "branch", "main", "")),
    ],
)
def test_the_run_api_takes_the_kind_from_the_field(github_hook, users, body, expected):
    client = client_for(users["alice"])
    answer = client.post(f"/api/workflows/{github_hook.workflow.pk}/run/", body, format="json")
    assert answer.status_code == 201, answer.content
    data = answer.json()
    assert (data["branch"], data["tag"], data["ref_kind"], data["ref"], data["commit_sha"]) == (
        expected
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"branch": "a..b"}, "branch", 'may not contain ".."'),
        ({"tag": "-x"}, "tag", 'may not start with "-"'),
        ({"commit": "main"}, "commit", "is not a commit id"),
        ({"branch": "main", "tag": "v1"}, "tag", "give one of branch, tag or ref"),
        ({"tag": "v1", "commit": "abcdef1"}, "commit", "a tag names its commit already"),
        ({"ref": "x" * 2049}, "ref", "longer than 2048 bytes"),
    ],
)
def test_the_run_api_refuses_bad_names_with_the_field(github_hook, users, body, field, message):
    answer = client_for(users["alice"]).post(
        f"/api/workflows/{github_hook.workflow.pk}/run/", body, format="json"
    )
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["field"] == field and message in error["message"]


# Ref names git accepts: components of printable characters without the forbidden ones.
COMPONENT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters=" ~^:?*[\\/\x7f"
    ),
    min_size=1,
    max_size=40,
)
REF_NAMES = st.lists(COMPONENT, min_size=1, max_size=6).map("/".join)


def git_accepts(name: str) -> bool:
    done = subprocess.run(
        ["git", "check-ref-format", "--branch", name], capture_output=True, check=False
    )
    return done.returncode == 0 and done.stdout.decode(errors="replace").strip() == name


COMMITS = itertools.count(1000)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=REF_NAMES)
def test_any_valid_ref_name_goes_through_a_webhook_unchanged(any_branch_hook, name):
    assume(git_accepts(name))
    push = github_push(name, after=sha_of(next(COMMITS)))
    answer = deliver(any_branch_hook, "github", push).json()
    delivery = WebhookDelivery.objects.get(pk=answer["delivery"])
    assert (delivery.branch, delivery.ref) == (name, f"refs/heads/{name}")
    if answer["outcome"] == "triggered":
        run = Execution.objects.get(pk=answer["runs"][0]["id"])
        assert (run.branch, run.ref, run.ref_kind) == (name, name, "branch")
    else:  # "*" does not cross "/": the reason names the branch whole
        assert f"branch {name} matches no branch rule" in answer["reason"]
