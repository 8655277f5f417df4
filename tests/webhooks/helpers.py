"""Signed webhook requests as GitHub, GitLab and Bitbucket send them, from stored fixtures."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.test import Client

from tests import base
from triggers.webhooks import do_rotate_secret, get_endpoint
from workflows.models import Service, Workflow

FIXTURES = Path(__file__).parent / "fixtures"
GITHUB_REPO = "https://github.com/octo-org/shop.git"
GITLAB_REPO = "git@gitlab.com:octo-group/shop.git"
BITBUCKET_REPO = "https://bitbucket.org/octo-team/shop.git"
EVENT_OF = {"github": "push", "gitlab": "Push Hook", "bitbucket": "repo:push"}


@dataclass
class Hook:
    workflow: Workflow
    hook_id: str
    secret: str


@cache
def _fixture_text(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads(_fixture_text(name)))


def ci_document(name: str = "ci", **source: Any) -> dict[str, Any]:
    return {
        "name": name,
        "pipeline_type": "ci",
        "source": {
            "kind": "git",
            "trigger": "automatic",
            "branches": [
                {"pattern": "main", "match": "exact"},
                {"pattern": "release/*", "match": "wildcard"},
            ],
            "tags": ["v*"],
            **source,
        },
        "build": {},
        "push": {"registry": "local", "repository": "octo/shop", "tag_template": "{short_sha}"},
        "deploy": {},
        "scripts": {},
        "scanners": {},
        "layout": {},
    }


def make_workflow(project, service_name: str, repo_url: str, **source: Any) -> Workflow:
    service = Service.objects.filter(project=project, name=service_name).first()
    if service is None:
        service = base.make_service(project, service_name, repo_url=repo_url)
    return base.save_document(service, ci_document(**source))


def make_hook(workflow: Workflow) -> Hook:
    secret = do_rotate_secret(workflow)
    return Hook(workflow, get_endpoint(workflow).hook_id, secret)


def encode(payload: dict | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def sha256_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(
    provider: str, body: bytes, secret: str, event: str | None = None, delivery: str | None = None
) -> dict[str, str]:
    """The headers each provider sends, signed (or with the token) for `secret`."""
    event = EVENT_OF[provider] if event is None else event
    delivery = delivery or str(uuid.uuid4())
    if provider == "github":
        return {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-GitHub-Hook-ID": "109948940",
            "X-Hub-Signature-256": sha256_signature(body, secret),
            "User-Agent": "GitHub-Hookshot/044aadd",
        }
    if provider == "gitlab":
        return {
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": delivery,
            "X-Gitlab-Instance": "https://gitlab.com",
            "X-Gitlab-Token": secret,
            "User-Agent": "GitLab/17.0.0",
        }
    return {
        "X-Event-Key": event,
        "X-Request-UUID": delivery,
        "X-Hook-UUID": "{4b4f1a8e-0b1c-4d2e-8f3a-5c6d7e8f9a0b}",
        "X-Hub-Signature": sha256_signature(body, secret),
        "User-Agent": "Bitbucket-Webhooks/2.0",
    }


def deliver(
    hook: Hook,
    provider: str,
    payload: dict | bytes,
    *,
    event: str | None = None,
    delivery: str | None = None,
    secret: str | None = None,
    client: Client | None = None,
    **extra: str,
):
    """POSTs a payload to the hook as the provider would, signed with the hook's secret."""
    body = encode(payload)
    headers = signed_headers(provider, body, secret or hook.secret, event, delivery)
    headers.update(extra)
    return post(hook.hook_id, provider, body, headers, client)


def post(hook_id: str, provider: str, body: bytes, headers: dict[str, str], client=None):
    client = client or Client()
    content_type = headers.pop("Content-Type", "application/json")
    return client.post(
        f"/hooks/{provider}/{hook_id}/", data=body, content_type=content_type, headers=headers
    )


def github_push(branch: str = "main", after: str = "", before: str = "", **more: Any) -> dict:
    payload = fixture("github_push")
    payload["ref"] = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    if after:
        payload["after"] = after
    if before:
        payload["before"] = before
    payload.update(more)
    return payload


def sha_of(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()
