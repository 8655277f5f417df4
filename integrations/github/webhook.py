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

from integrations.webhooks import events
from integrations.webhooks.events import BadPayload, Kind, WebhookEvent

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


delivery_id = events.header_reader(DELIVERY_HEADER)


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    events.check_sha256_signature(SIGNATURE_HEADER, headers.get(SIGNATURE_HEADER), body, secret)


def parse(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
    result = events.start_event(NAME, headers, EVENT_HEADER, DELIVERY_HEADER)
    payload = events.load_json(_json_part(headers, body))
    event = result.event
    repo = events.dig(payload, "repository")
    result.repository_name = events.text(events.dig(repo, "full_name"))
    result.repository_urls = events.urls(
        events.dig(repo, "clone_url"),
        events.dig(repo, "ssh_url"),
        events.dig(repo, "html_url"),
        events.dig(repo, "git_url"),
    )
    result.sender = events.text(events.dig(payload, "sender", "login"))
    if event == "ping":
        result.kind = Kind.PING
    elif event == "push":
        _read_push(payload, result)
    elif event == "pull_request":
        _read_pull_request(payload, result)
    elif event == "delete":
        what = f"{events.text(payload.get('ref_type'), 20)} {events.text(payload.get('ref'), 200)}".strip()
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
    after = payload.get("after")
    result.sender = events.text(events.dig(payload, "pusher", "name")) or result.sender
    result.sender_email = events.text(events.dig(payload, "pusher", "email"))
    events.read_ref_push(
        result,
        events.ref_text(payload.get("ref")),
        before=events.sha(payload.get("before")),
        commit=events.sha(after),
        deleted=payload.get("deleted") is True or events.is_zero_sha(after),
        no_commit="the push has no valid commit in after",
    )


def _read_pull_request(payload: dict, result: WebhookEvent) -> None:
    result.kind = Kind.PULL_REQUEST
    action, pull = events.text(payload.get("action")), events.dig(payload, "pull_request")
    number = events.request_number(
        payload.get("number"), events.dig(pull, "number"), missing="the pull request has no number"
    )
    if action not in BUILD_ACTIONS:
        result.reason = f'pull request #{number} "{action[:50]}": nothing new to build'
        return
    change = events.pull_request_change(
        number,
        commit=events.sha(events.dig(pull, "head", "sha")),
        branch=events.ref_text(events.dig(pull, "head", "ref")),
        target_branch=events.ref_text(events.dig(pull, "base", "ref")),
        no_commit="the pull request has no head commit",
    )
    result.changes = [change]
