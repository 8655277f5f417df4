"""GitHub webhooks: verify `X-Hub-Signature-256`, then read push, pull_request, ping and delete.

- Signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
- Event: `X-GitHub-Event`; delivery id: `X-GitHub-Delivery` (kept when GitHub redelivers).
- A push names its ref (`refs/heads/…`, `refs/tags/…`) and the new commit in `after`; a
  deletion has `deleted: true` and `after` of forty zeros.
- The body is JSON, or `payload=<json>` when the hook's content type is form-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

from integrations.webhooks.events import (
    BadPayload,
    Kind,
    RefChange,
    WebhookEvent,
    check_sha256_signature,
    dig,
    is_zero_sha,
    load_json,
    ref_change,
    ref_text,
    sha,
    split_ref,
    text,
    urls,
)

NAME = "github"
SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
KEPT_HEADERS = (
    EVENT_HEADER,
    DELIVERY_HEADER,
    "X-GitHub-Hook-ID",
    "X-GitHub-Hook-Installation-Target-Type",
    "X-GitHub-Hook-Installation-Target-ID",
    "X-GitHub-Enterprise-Host",
    "X-GitHub-Enterprise-Version",
)
# Pull request actions that bring new code to build; the others (closed, labeled ...) do not.
BUILD_ACTIONS = frozenset({"opened", "synchronize", "reopened"})


def delivery_id(headers: Mapping[str, str]) -> str:
    return headers.get(DELIVERY_HEADER, "")


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    check_sha256_signature(SIGNATURE_HEADER, headers.get(SIGNATURE_HEADER), body, secret)


def parse(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
    event = text(headers.get(EVENT_HEADER, ""), 100)
    if not event:
        raise BadPayload(f"{EVENT_HEADER} is missing")
    payload = load_json(_json_part(headers, body))
    repo = dig(payload, "repository")
    result = WebhookEvent(
        provider=NAME,
        event=event,
        kind=Kind.UNSUPPORTED,
        delivery_id=delivery_id(headers),
        repository_name=text(dig(repo, "full_name")),
        repository_urls=urls(
            dig(repo, "clone_url"),
            dig(repo, "ssh_url"),
            dig(repo, "html_url"),
            dig(repo, "git_url"),
        ),
        sender=text(dig(payload, "sender", "login")),
    )
    if event == "ping":
        result.kind = Kind.PING
    elif event == "push":
        _read_push(payload, result)
    elif event == "pull_request":
        _read_pull_request(payload, result)
    elif event == "delete":
        what = f"{text(payload.get('ref_type'), 20)} {text(payload.get('ref'), 200)}".strip()
        result.kind, result.reason = Kind.DELETE, f"{what or 'a ref'} was deleted"
    else:
        result.reason = f'the "{event[:50]}" event starts nothing; send push and pull requests'
    return result


def _json_part(headers: Mapping[str, str], body: bytes) -> bytes:
    if not headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        return body
    try:
        form = parse_qs(body.decode(), strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadPayload("the form-encoded body cannot be read") from exc
    if not form.get("payload"):
        raise BadPayload("the form-encoded body has no payload field")
    return form["payload"][0].encode()


def _read_push(payload: dict, result: WebhookEvent) -> None:
    ref, after = ref_text(payload.get("ref")), payload.get("after")
    if not ref:
        raise BadPayload("the push has no ref")
    kind, name = split_ref(ref)
    result.sender = text(dig(payload, "pusher", "name")) or result.sender
    result.sender_email = text(dig(payload, "pusher", "email"))
    before = sha(payload.get("before"))
    if payload.get("deleted") is True or is_zero_sha(after):
        result.kind = Kind.DELETE
        result.changes = [ref_change(Kind.DELETE, kind, name, "", before)]
        return
    if kind == Kind.UNSUPPORTED:
        result.reason = f"{ref[:200]} is neither a branch nor a tag"
        return
    commit = sha(after)
    if not commit:
        raise BadPayload("the push has no valid commit in after")
    result.kind = kind
    result.changes = [ref_change(kind, kind, name, commit, before)]


def _read_pull_request(payload: dict, result: WebhookEvent) -> None:
    result.kind = Kind.PULL_REQUEST
    action, number = text(payload.get("action")), payload.get("number")
    pull = dig(payload, "pull_request")
    if not isinstance(number, int) or isinstance(number, bool):
        number = dig(pull, "number")
    if not isinstance(number, int) or isinstance(number, bool):
        raise BadPayload("the pull request has no number")
    if action not in BUILD_ACTIONS:
        result.reason = f'pull request #{number} "{action[:50]}": nothing new to build'
        return
    commit = sha(dig(pull, "head", "sha"))
    if not commit:
        raise BadPayload("the pull request has no head commit")
    result.changes = [
        RefChange(
            kind=Kind.PULL_REQUEST,
            branch=ref_text(dig(pull, "head", "ref")),
            commit=commit,
            pull_request=number,
            target_branch=ref_text(dig(pull, "base", "ref")),
        )
    ]
