"""GitLab webhooks: check `X-Gitlab-Token`, then read push, tag push and merge request hooks.

- Token: `X-Gitlab-Token` is the plain shared secret, compared in constant time.
- Event: `X-Gitlab-Event` (`Push Hook`, `Tag Push Hook`, `Merge Request Hook`); delivery id:
  `X-Gitlab-Event-UUID`.
- The commit is `checkout_sha` (or `after`); a deletion has `after` of forty zeros and no
  `checkout_sha`.
"""

from __future__ import annotations

from collections.abc import Mapping

from integrations.webhooks.events import (
    BadPayload,
    Kind,
    RefChange,
    WebhookEvent,
    check_token,
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


def delivery_id(headers: Mapping[str, str]) -> str:
    return headers.get(DELIVERY_HEADER, "")


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    check_token(TOKEN_HEADER, headers.get(TOKEN_HEADER), secret)


def parse(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
    event = text(headers.get(EVENT_HEADER, ""), 100)
    if not event:
        raise BadPayload(f"{EVENT_HEADER} is missing")
    payload = load_json(body)
    project, repo = dig(payload, "project"), dig(payload, "repository")
    result = WebhookEvent(
        provider=NAME,
        event=event,
        kind=Kind.UNSUPPORTED,
        delivery_id=delivery_id(headers),
        repository_name=text(dig(project, "path_with_namespace")),
        repository_urls=urls(
            dig(project, "git_http_url"),
            dig(project, "git_ssh_url"),
            dig(project, "web_url"),
            dig(repo, "git_http_url"),
            dig(repo, "git_ssh_url"),
            dig(repo, "homepage"),
        ),
        sender=text(payload.get("user_username")) or text(dig(payload, "user", "username")),
        sender_email=text(payload.get("user_email")),
    )
    if event in PUSH_EVENTS:
        _read_push(payload, result)
    elif event == "Merge Request Hook":
        _read_merge_request(payload, result)
    else:
        result.reason = f'the "{event[:50]}" event starts nothing; send push, tag push and MRs'
    return result


def _read_push(payload: dict, result: WebhookEvent) -> None:
    ref = ref_text(payload.get("ref"))
    if not ref:
        raise BadPayload("the push has no ref")
    kind, name = split_ref(ref)
    before, after = sha(payload.get("before")), payload.get("after")
    if is_zero_sha(after):
        result.kind = Kind.DELETE
        result.changes = [ref_change(Kind.DELETE, kind, name, "", before)]
        return
    if kind == Kind.UNSUPPORTED:
        result.reason = f"{ref[:200]} is neither a branch nor a tag"
        return
    commit = sha(payload.get("checkout_sha")) or sha(after)
    if not commit:
        raise BadPayload("the push has no valid commit in checkout_sha or after")
    result.kind = kind
    result.changes = [ref_change(kind, kind, name, commit, before)]


def _read_merge_request(payload: dict, result: WebhookEvent) -> None:
    result.kind = Kind.PULL_REQUEST
    attrs = dig(payload, "object_attributes")
    number, action = dig(attrs, "iid"), text(dig(attrs, "action"))
    if not isinstance(number, int) or isinstance(number, bool):
        raise BadPayload("the merge request has no iid")
    brings_commits = action == "update" and bool(sha(dig(attrs, "oldrev")))
    if action not in BUILD_ACTIONS and not brings_commits:
        result.reason = f'merge request !{number} "{action[:50]}": nothing new to build'
        return
    commit = sha(dig(attrs, "last_commit", "id"))
    if not commit:
        raise BadPayload("the merge request has no last commit")
    result.changes = [
        RefChange(
            kind=Kind.PULL_REQUEST,
            branch=ref_text(dig(attrs, "source_branch")),
            commit=commit,
            pull_request=number,
            target_branch=ref_text(dig(attrs, "target_branch")),
        )
    ]
