"""Bitbucket Cloud webhooks: verify `X-Hub-Signature`, then read pushes and pull requests.

- Signature: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` (SHA-256 despite the
  name); Bitbucket leaves it out when the hook has no secret, and we then refuse the delivery.
- Event: `X-Event-Key` (`repo:push`, `pullrequest:created`, `pullrequest:updated` ...);
  delivery id: `X-Request-UUID`.
- One push may move several refs: `push.changes[]`, each with `new.type` branch or tag,
  `new.name` and `new.target.hash`; `new: null` is a deletion.
"""

from __future__ import annotations

from collections.abc import Mapping

from integrations.webhooks import events
from integrations.webhooks.events import BadPayload, Kind, WebhookEvent

NAME = "bitbucket"
SIGNATURE_HEADER = "X-Hub-Signature"
EVENT_HEADER = "X-Event-Key"
DELIVERY_HEADER = "X-Request-UUID"
KEPT_HEADERS = (EVENT_HEADER, DELIVERY_HEADER, "X-Hook-UUID", "X-Attempt-Number")
BUILD_EVENTS = frozenset({"pullrequest:created", "pullrequest:updated"})
REF_KINDS = {"branch": Kind.PUSH, "tag": Kind.TAG}
MAX_CHANGES = 50


delivery_id = events.header_reader(DELIVERY_HEADER)


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    events.check_sha256_signature(SIGNATURE_HEADER, headers.get(SIGNATURE_HEADER), body, secret)


def parse(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
    result = events.start_event(NAME, headers, EVENT_HEADER, DELIVERY_HEADER)
    payload = events.load_json(body)
    event = result.event
    repo = events.dig(payload, "repository")
    name = events.text(events.dig(repo, "full_name"))
    html = events.text(events.dig(repo, "links", "html", "href"), 500)
    result.repository_name = name
    # The payload has no clone URL; the web address has the same host and path.
    result.repository_urls = events.urls(html, f"https://bitbucket.org/{name}.git" if name else "")
    actor = events.dig(payload, "actor")
    result.sender = events.text(events.dig(actor, "nickname")) or events.text(
        events.dig(actor, "display_name")
    )
    if event == "diagnostics:ping":
        result.kind = Kind.PING
    elif event == "repo:push":
        _read_push(payload, result)
    elif event.startswith("pullrequest:"):
        _read_pull_request(event, payload, result)
    else:
        result.reason = f'the "{event[:50]}" event starts nothing; send repo:push and pull requests'
    return result


def _read_push(payload: dict, result: WebhookEvent) -> None:
    changes = events.dig(payload, "push", "changes")
    if not isinstance(changes, list):
        raise BadPayload("the push has no changes list")
    for change in changes[:MAX_CHANGES]:
        new, old = events.dig(change, "new"), events.dig(change, "old")
        if new is None and isinstance(old, Mapping):
            kind = REF_KINDS.get(events.text(old.get("type")), Kind.UNSUPPORTED)
            name = events.ref_text(old.get("name"))
            result.changes.append(events.ref_change(Kind.DELETE, kind, name, "", _hash(old)))
            continue
        kind = REF_KINDS.get(events.text(events.dig(new, "type")), Kind.UNSUPPORTED)
        commit, name = _hash(new), events.ref_text(events.dig(new, "name"))
        if kind == Kind.UNSUPPORTED or not name or not commit:
            raise BadPayload("a push change has no branch or tag name and commit hash")
        result.changes.append(events.ref_change(kind, kind, name, commit, _hash(old)))
    if not result.changes:
        result.reason = "the push changes no branch or tag"
        return
    kinds = {c.kind for c in result.changes}
    result.kind = kinds.pop() if len(kinds) == 1 else Kind.PUSH


def _hash(ref: object) -> str:
    return events.sha(events.dig(ref, "target", "hash"))


def _read_pull_request(event: str, payload: dict, result: WebhookEvent) -> None:
    result.kind = Kind.PULL_REQUEST
    pull = events.dig(payload, "pullrequest")
    number = events.request_number(events.dig(pull, "id"), missing="the pull request has no id")
    if event not in BUILD_EVENTS:
        result.reason = f'pull request #{number} "{event[12:62]}": nothing new to build'
        return
    # Bitbucket sends the short (12-digit) hash here.
    change = events.pull_request_change(
        number,
        commit=events.sha(events.dig(pull, "source", "commit", "hash")),
        branch=events.ref_text(events.dig(pull, "source", "branch", "name")),
        target_branch=events.ref_text(events.dig(pull, "destination", "branch", "name")),
        no_commit="the pull request has no source commit",
    )
    result.changes = [change]
