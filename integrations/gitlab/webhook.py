"""GitLab webhooks: check `X-Gitlab-Token`, then read push, tag push and merge request hooks.

- Token: `X-Gitlab-Token` is the plain shared secret, compared in constant time.
- Event: `X-Gitlab-Event` (`Push Hook`, `Tag Push Hook`, `Merge Request Hook`); delivery id:
  `X-Gitlab-Event-UUID`.
- The commit is `checkout_sha` (or `after`); a deletion has `after` of forty zeros and no
  `checkout_sha`.
"""

from __future__ import annotations

from collections.abc import Mapping

from integrations.webhooks import events
from integrations.webhooks.events import Kind, WebhookEvent

NAME = "gitlab"
TOKEN_HEADER = "X-Gitlab-Token"
EVENT_HEADER = "X-Gitlab-Event"
DELIVERY_HEADER = "X-Gitlab-Event-UUID"
KEPT_HEADERS = (
    EVENT_HEADER,
    DELIVERY_HEADER,
    "X-Gitlab-Webhook-UUID",
    "X-Gitlab-Instance",
    "Idempotency-Key",
)
PUSH_EVENTS = frozenset({"Push Hook", "Tag Push Hook"})
# "update" builds only when it brings commits: GitLab then sends `oldrev`.
BUILD_ACTIONS = frozenset({"open", "reopen"})


delivery_id = events.header_reader(DELIVERY_HEADER)


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    events.check_token(TOKEN_HEADER, headers.get(TOKEN_HEADER), secret)


def parse(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
    result = events.start_event(NAME, headers, EVENT_HEADER, DELIVERY_HEADER)
    payload = events.load_json(body)
    event = result.event
    project, repo = events.dig(payload, "project"), events.dig(payload, "repository")
    result.repository_name = events.text(events.dig(project, "path_with_namespace"))
    result.repository_urls = events.urls(
        events.dig(project, "git_http_url"),
        events.dig(project, "git_ssh_url"),
        events.dig(project, "web_url"),
        events.dig(repo, "git_http_url"),
        events.dig(repo, "git_ssh_url"),
        events.dig(repo, "homepage"),
    )
    result.sender = events.text(payload.get("user_username")) or events.text(
        events.dig(payload, "user", "username")
    )
    result.sender_email = events.text(payload.get("user_email"))
    if event in PUSH_EVENTS:
        _read_push(payload, result)
    elif event == "Merge Request Hook":
        _read_merge_request(payload, result)
    else:
        result.reason = f'the "{event[:50]}" event starts nothing; send push, tag push and MRs'
    return result


def _read_push(payload: dict, result: WebhookEvent) -> None:
    after = payload.get("after")
    events.read_ref_push(
        result,
        events.ref_text(payload.get("ref")),
        before=events.sha(payload.get("before")),
        commit=events.sha(payload.get("checkout_sha")) or events.sha(after),
        deleted=events.is_zero_sha(after),
        no_commit="the push has no valid commit in checkout_sha or after",
    )


def _read_merge_request(payload: dict, result: WebhookEvent) -> None:
    result.kind = Kind.PULL_REQUEST
    attrs = events.dig(payload, "object_attributes")
    number, action = events.dig(attrs, "iid"), events.text(events.dig(attrs, "action"))
    number = events.request_number(number, missing="the merge request has no iid")
    brings_commits = action == "update" and bool(events.sha(events.dig(attrs, "oldrev")))
    if action not in BUILD_ACTIONS and not brings_commits:
        result.reason = f'merge request !{number} "{action[:50]}": nothing new to build'
        return
    change = events.pull_request_change(
        number,
        commit=events.sha(events.dig(attrs, "last_commit", "id")),
        branch=events.ref_text(events.dig(attrs, "source_branch")),
        target_branch=events.ref_text(events.dig(attrs, "target_branch")),
        no_commit="the merge request has no last commit",
    )
    result.changes = [change]
