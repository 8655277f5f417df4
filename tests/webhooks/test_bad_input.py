"""Bad input gets a clear 4xx (or a polite 2xx), leaves nothing but a rejected row, never a 500."""

from __future__ import annotations

import json
import random
import string

import pytest
from django.test import Client

from executions.models import Execution
from integrations.models import WebhookDelivery
from tests.webhooks.helpers import (
    EVENT_OF,
    deliver,
    encode,
    fixture,
    post,
    sha256_signature,
    signed_headers,
)

pytestmark = pytest.mark.django_db

PUSH = {"github": "github_push", "gitlab": "gitlab_push", "bitbucket": "bitbucket_push"}
SIGNATURE = {
    "github": "X-Hub-Signature-256",
    "gitlab": "X-Gitlab-Token",
    "bitbucket": "X-Hub-Signature",
}
PROVIDERS = list(PUSH)


def only_a_rejected_row(reason_part: str) -> WebhookDelivery:
    row = WebhookDelivery.objects.get()
    assert row.outcome == "rejected"
    assert reason_part in row.reason
    assert not Execution.objects.exists()
    return row


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_signature_or_token_is_401_and_only_a_rejected_row(hooks, provider):
    response = deliver(hooks[provider], provider, fixture(PUSH[provider]), secret="not-the-secret")
    assert response.status_code == 401
    row = only_a_rejected_row("does not match")
    assert bytes(row.body) == b""  # never authenticated: not kept
    assert SIGNATURE[provider] not in row.headers
    assert (
        row.headers[
            {"github": "X-GitHub-Event", "gitlab": "X-Gitlab-Event"}.get(provider, "X-Event-Key")
        ]
        == EVENT_OF[provider]
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_signature_or_token_is_401(hooks, provider):
    body = encode(fixture(PUSH[provider]))
    headers = signed_headers(provider, body, hooks[provider].secret)
    del headers[SIGNATURE[provider]]
    response = post(hooks[provider].hook_id, provider, body, headers)
    assert response.status_code == 401
    only_a_rejected_row("is missing")


def test_signature_of_another_body_is_401(github_hook):
    body = encode(fixture("github_push"))
    headers = signed_headers("github", body + b" ", github_hook.secret)
    assert post(github_hook.hook_id, "github", body, headers).status_code == 401


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe", b"", b"[" * 100_000])
def test_malformed_json_is_400(hooks, provider, body):
    response = deliver(hooks[provider], provider, body)
    assert response.status_code == 400, response.content
    only_a_rejected_row("JSON")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_push_without_commit_is_400(hooks, provider):
    payload = fixture(PUSH[provider])
    if provider == "bitbucket":
        payload["push"]["changes"][0]["new"]["target"] = {}
    else:
        payload["after"], payload["checkout_sha"] = "not-a-sha", None
    response = deliver(hooks[provider], provider, payload)
    assert response.status_code == 400
    only_a_rejected_row("commit")


def test_missing_event_header_is_400(github_hook):
    response = deliver(github_hook, "github", fixture("github_push"), event="")
    assert response.status_code == 400


@pytest.mark.parametrize("provider", PROVIDERS)
def test_body_over_5_mb_is_413(hooks, provider):
    payload = fixture(PUSH[provider])
    payload["padding"] = "x" * (5 * 1024 * 1024)
    response = deliver(hooks[provider], provider, payload)
    assert response.status_code == 413
    row = only_a_rejected_row("over the 5 MB limit")
    assert row.body_size > 5 * 1024 * 1024 and bytes(row.body) == b""


def test_body_of_4_mb_is_accepted(github_hook):
    payload = fixture("github_push")
    payload["padding"] = "x" * (4 * 1024 * 1024)
    assert deliver(github_hook, "github", payload).status_code == 202


@pytest.mark.parametrize(
    "url",
    ["/hooks/github/no-such-hook/", "/hooks/gitlab/x/", "/hooks/svn/{hook}/", "/hooks/github/"],
)
def test_unknown_hook_is_404_and_stores_nothing(github_hook, url):
    body = encode(fixture("github_push"))
    headers = signed_headers("github", body, github_hook.secret)
    response = Client().post(
        url.format(hook=github_hook.hook_id),
        data=body,
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 404
    assert not WebhookDelivery.objects.exists()


def test_only_post(github_hook):
    assert Client().get(f"/hooks/github/{github_hook.hook_id}/").status_code == 405


# Fuzz: a few hundred random requests to the three endpoints, some signed correctly so that the
# parsers see random payloads; whatever comes in, the answer is never a 500.

KEYS = [
    "ref", "after", "before", "deleted", "checkout_sha", "repository", "full_name", "clone_url",
    "ssh_url", "html_url", "project", "git_http_url", "path_with_namespace", "links", "html",
    "href", "pusher", "name", "email", "sender", "login", "user_username", "action", "number",
    "pull_request", "head", "base", "sha", "object_attributes", "iid", "oldrev", "last_commit",
    "id", "source_branch", "target_branch", "push", "changes", "new", "old", "type", "target",
    "hash", "pullrequest", "source", "destination", "branch", "commit", "actor", "nickname",
]  # fmt: skip
EVENTS = {
    "github": ["push", "pull_request", "ping", "delete", "issues", "", "push\x00"],
    "gitlab": ["Push Hook", "Tag Push Hook", "Merge Request Hook", "Note Hook", ""],
    "bitbucket": ["repo:push", "pullrequest:created", "pullrequest:updated", "diagnostics:ping"],
}  # fmt: skip


def random_value(rng: random.Random, depth: int = 0):
    choice = rng.randrange(9 if depth < 4 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False, 0, -1, 2**70, 1.5, float("inf")])
    if choice == 2:
        return rng.choice(["0" * 40, "refs/heads/main", "refs/tags/v1", "a" * 40, "", "branch"])
    if choice == 3:
        return "".join(rng.choice(string.printable + "é/\u202e") for _ in range(rng.randrange(30)))
    if choice == 4:
        return rng.choice(
            ["https://github.com/octo-org/shop.git", "git@gitlab.com:octo-group/shop"]
        )
    if choice == 5:
        return rng.randrange(-5, 10**6)
    if choice == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randrange(6))}


def mutate(rng: random.Random, data, depth: int = 0):
    """A fixture with some of its values replaced by random ones."""
    if isinstance(data, dict):
        return {
            k: random_value(rng, depth) if rng.random() < 0.15 else mutate(rng, v, depth + 1)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [mutate(rng, v, depth + 1) for v in data]
    return data


def random_body(rng: random.Random, provider: str) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randrange(200))
    if kind == 1:
        return json.dumps(random_value(rng)).encode()
    if kind == 2:
        return json.dumps({k: random_value(rng) for k in rng.sample(KEYS, 8)}).encode()
    name = rng.choice([n for n in FIXTURE_NAMES if n.startswith(provider)])
    return json.dumps(mutate(rng, fixture(name))).encode()


FIXTURE_NAMES = [
    "github_push", "github_push_tag", "github_push_delete", "github_pull_request", "github_ping",
    "gitlab_push", "gitlab_tag_push", "gitlab_merge_request", "bitbucket_push",
    "bitbucket_push_tag", "bitbucket_push_delete", "bitbucket_pullrequest_created",
]  # fmt: skip


def random_headers(rng: random.Random, provider: str, body: bytes, secret: str) -> dict:
    headers = signed_headers(provider, body, secret, event=rng.choice(EVENTS[provider]))
    for name in list(headers):
        roll = rng.random()
        if roll < 0.1:
            del headers[name]
        elif roll < 0.2:
            headers[name] = "".join(rng.choice(string.printable) for _ in range(20)).strip()
    if rng.random() < 0.2:
        headers[SIGNATURE[provider]] = rng.choice(
            ["sha256=", "sha1=abc", "sha256=" + "0" * 64, "é" * 5, sha256_signature(b"", secret)]
        )
    headers["Content-Type"] = rng.choice(
        ["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/x"]
    )
    return {k: v for k, v in headers.items() if "\n" not in v and "\r" not in v}


def test_fuzz_never_500(hooks):
    rng = random.Random(20261128)
    client = Client()
    seen: set[int] = set()
    for _ in range(600):  # about 200 per endpoint
        provider = rng.choice(PROVIDERS)
        hook = hooks[provider]
        body = random_body(rng, provider)
        headers = random_headers(rng, provider, body, hook.secret)
        hook_id = hook.hook_id if rng.random() < 0.9 else rng.choice(["x", hook.hook_id + "x"])
        response = post(hook_id, provider, body, headers, client)
        assert response.status_code in {200, 202, 400, 401, 404, 413}, response.content
        seen.add(response.status_code)
    assert {200, 202, 400, 401, 404} <= seen  # the fuzz reached every branch
    stored = WebhookDelivery.objects.values_list("event", "reason", "branch", "sender", "headers")
    for *texts, headers in stored:  # PostgreSQL cannot store NUL characters
        assert all("\x00" not in t for t in [*texts, *headers.values()])
