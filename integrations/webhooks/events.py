"""What every provider's webhook parser returns, and the two ways a delivery can be refused.

Each provider (`integrations/<provider>/webhook.py`) turns its own headers and payload into a
`WebhookEvent`, so matching and triggering never look at provider-specific shapes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")
ZERO_SHA_RE = re.compile(r"^0+$")


class Kind(StrEnum):
    PUSH = "push"
    TAG = "tag"
    PULL_REQUEST = "pull_request"
    PING = "ping"
    DELETE = "delete"
    UNSUPPORTED = "unsupported"


class WebhookError(Exception):
    """A delivery refused before it is looked at; `status` is the HTTP answer."""

    status = 400

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class Unauthorized(WebhookError):
    status = 401


class BadPayload(WebhookError):
    status = 400


@dataclass(frozen=True)
class RefChange:
    """One ref a push moved (Bitbucket may send several in one delivery), or one pull request."""

    kind: Kind
    branch: str = ""
    tag: str = ""
    commit: str = ""
    before: str = ""
    pull_request: int | None = None
    target_branch: str = ""

    @property
    def ref(self) -> str:
        """The ref a run is deduplicated on."""
        if self.kind == Kind.PULL_REQUEST:
            return f"pull/{self.pull_request}"
        if self.tag:
            return f"refs/tags/{self.tag}"
        return f"refs/heads/{self.branch}"

    @property
    def name(self) -> str:
        return self.tag or self.branch


@dataclass
class WebhookEvent:
    """A provider's delivery, normalized."""

    provider: str
    event: str
    kind: Kind
    delivery_id: str = ""
    changes: list[RefChange] = field(default_factory=list)
    repository_name: str = ""
    repository_urls: tuple[str, ...] = ()
    sender: str = ""
    sender_email: str = ""
    # Why nothing can come of this event (unsupported event, a closed pull request ...).
    reason: str = ""

    @property
    def first(self) -> RefChange | None:
        return self.changes[0] if self.changes else None

    @property
    def branch(self) -> str:
        return self.first.branch if self.first else ""

    @property
    def tag(self) -> str:
        return self.first.tag if self.first else ""

    @property
    def commit(self) -> str:
        return self.first.commit if self.first else ""

    @property
    def before(self) -> str:
        return self.first.before if self.first else ""

    @property
    def ref(self) -> str:
        return self.first.ref if self.first else ""


def header_reader(name: str) -> Callable[[Mapping[str, str]], str]:
    """A function reading header `name` of a delivery ("" when absent): a provider's
    `delivery_id`."""
    return lambda headers: headers.get(name, "")


def start_event(
    provider: str, headers: Mapping[str, str], event_header: str, delivery_header: str
) -> WebhookEvent:
    """The opening every provider's parser shares: the event's name from `event_header` (a
    delivery without one is refused: BadPayload) and its id, as an UNSUPPORTED event that the
    parser fills in from the payload."""
    event = text(headers.get(event_header, ""), 100)
    if not event:
        raise BadPayload(f"{event_header} is missing")
    return WebhookEvent(
        provider=provider,
        event=event,
        kind=Kind.UNSUPPORTED,
        delivery_id=headers.get(delivery_header, ""),
    )


def load_json(body: bytes) -> dict[str, Any]:
    """The payload as a JSON object, or BadPayload."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadPayload(f"the body is not valid JSON: {str(exc)[:200]}") from exc
    if not isinstance(payload, dict):
        raise BadPayload("the body is not a JSON object")
    return payload


def dig(data: Any, *path: str) -> Any:
    """`data[a][b]...`, or None when any step is missing or not an object."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def text(value: Any, limit: int = 255) -> str:
    """A payload value as a string, or "" when it is not one. NUL characters are dropped:
    PostgreSQL cannot store them, and no ref or name holds one."""
    return value[:limit].replace("\x00", "") if isinstance(value, str) else ""


def ref_text(value: Any) -> str:
    """A ref or branch name from a payload, whole: never cut, as a cut name matches no rule and
    names another branch. NUL is dropped (git refuses it in names anyway)."""
    return value.replace("\x00", "") if isinstance(value, str) else ""


def sha(value: Any) -> str:
    """A commit id, lower case, or "" when the value is not one."""
    value = text(value, 64).lower()
    return value if SHA_RE.match(value) else ""


def is_zero_sha(value: Any) -> bool:
    return isinstance(value, str) and bool(ZERO_SHA_RE.match(value))


def split_ref(ref: str) -> tuple[Kind, str]:
    """`refs/heads/x` → (PUSH, x); `refs/tags/v1` → (TAG, v1); anything else is unsupported."""
    for prefix, kind in (("refs/heads/", Kind.PUSH), ("refs/tags/", Kind.TAG)):
        if ref.startswith(prefix) and len(ref) > len(prefix):
            return kind, ref[len(prefix) :]
    return Kind.UNSUPPORTED, ref


def urls(*values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if isinstance(v, str) and v))


def check_sha256_signature(header: str, given: str | None, body: bytes, secret: str) -> None:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, compared in constant time."""
    if not given:
        raise Unauthorized(f"{header} is missing: set the secret in the provider's webhook")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII strings, and a header may hold anything.
    if not hmac.compare_digest(given.strip().lower().encode(errors="replace"), expected.encode()):
        raise Unauthorized(f"{header} does not match: the secret differs from this workflow's")


def check_token(header: str, given: str | None, secret: str) -> None:
    """A plain shared secret, compared in constant time."""
    if not given:
        raise Unauthorized(f"{header} is missing: set the secret token in the provider's webhook")
    if not hmac.compare_digest(given.encode(errors="replace"), secret.encode()):
        raise Unauthorized(f"{header} does not match this workflow's secret")


def read_ref_push(
    result: WebhookEvent, ref: str, *, before: str, commit: str, deleted: bool, no_commit: str
) -> None:
    """Fills `result` from a push of one ref, as GitHub and GitLab send it: the ref's full name
    (`refs/heads/…`, `refs/tags/…`), the commits before and after (`commit` "" when none is
    valid: BadPayload `no_commit`, unless the ref was `deleted`)."""
    if not ref:
        raise BadPayload("the push has no ref")
    kind, name = split_ref(ref)
    if deleted:
        result.kind = Kind.DELETE
        result.changes = [ref_change(Kind.DELETE, kind, name, "", before)]
        return
    if kind == Kind.UNSUPPORTED:
        result.reason = f"{ref[:200]} is neither a branch nor a tag"
        return
    if not commit:
        raise BadPayload(no_commit)
    result.kind = kind
    result.changes = [ref_change(kind, kind, name, commit, before)]


def request_number(*values: Any, missing: str) -> int:
    """The first of `values` that is a whole number (JSON true is not): a pull or merge
    request's number. None is: BadPayload `missing`."""
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    raise BadPayload(missing)


def pull_request_change(
    number: int, *, commit: str, branch: str, target_branch: str, no_commit: str
) -> RefChange:
    """Pull (merge) request `number` at `commit` of `branch`, into `target_branch`; no valid
    commit: BadPayload `no_commit`."""
    if not commit:
        raise BadPayload(no_commit)
    return RefChange(
        kind=Kind.PULL_REQUEST,
        branch=branch,
        commit=commit,
        pull_request=number,
        target_branch=target_branch,
    )


def ref_change(
    kind: Kind, ref_kind: Kind, name: str, commit: str = "", before: str = ""
) -> RefChange:
    """A change of `kind` to the branch or tag `name` (`ref_kind` says which of the two)."""
    if ref_kind == Kind.TAG:
        return RefChange(kind=kind, tag=name, commit=commit, before=before)
    return RefChange(kind=kind, branch=name, commit=commit, before=before)
