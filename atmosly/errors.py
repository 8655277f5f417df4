"""Domain errors that service functions raise; the surfaces translate them (the API's one
exception handler in `atmosly.api_errors`, pages' inline errors in `atmosly.forms`, the CLI's
message). Service functions never raise HTTP exceptions, so a background loop (recovery, the
Cron CD tick, the worker) never has to catch one.

Refusals for lack of a right are Django's own `django.core.exceptions.PermissionDenied` (the
API answers 403 with its message): it belongs to no HTTP layer and Django's admin and pages
already answer it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Conflict(Exception):
    """The stored state refuses this change: a status move the machine does not allow or that
    another process made first, a request already decided, a rollback to what already runs.
    The API answers 409 with `{"detail": <message>}`."""

    default_message = "The object's current state does not allow this."

    def __init__(self, message: str = "") -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    @property
    def detail(self) -> str:
        """The message under the name pages and forms read from API errors."""
        return self.message


class NotFound(Exception):
    """The object does not exist, or the user may not know it does (not a member of its
    project). The API answers 404 with `{"detail": <message>}`."""

    default_message = "Not found."

    def __init__(self, message: str = "") -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    @property
    def detail(self) -> str:
        return self.message


class Invalid(Exception):
    """Input, or a stored definition, that breaks a rule. `errors` is a flat list of
    `{"field": <path>, "message": <what is wrong>}`, the path in the document's terms
    ("deploy.environments[2].environment", "" for the whole object). The API answers 400 with
    them (`atmosly.api_errors`); pages put each next to its field (`atmosly.forms`).

    Built from a message (the whole object), a mapping of path → message(s), or a
    serializer's nested `errors`."""

    def __init__(self, errors: str | Mapping[str, Any] | list[Any]) -> None:
        self.errors = flatten_errors(errors)
        super().__init__("; ".join(self.messages()))

    def messages(self) -> list[str]:
        """Each error as `path: message` (just the message for the whole object)."""
        return [
            f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in self.errors
        ]


def flatten_errors(detail: Any, path: str = "") -> list[dict[str, str]]:
    """Turns nested error detail (a serializer's `errors`, a DRF ValidationError's `detail`, a
    mapping of path → message) into a flat list of {field, message}."""
    out: list[dict[str, str]] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                out += flatten_errors(value, path)
            elif isinstance(key, int):  # DRF keys a list's item errors by index
                out += flatten_errors(value, f"{path}[{key}]")
            else:
                out += flatten_errors(value, f"{path}.{key}" if path else str(key))
    elif isinstance(detail, list):
        if all(not isinstance(item, (Mapping, list)) for item in detail):
            out += [{"field": path, "message": str(item)} for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:  # DRF puts {} for list items that are valid
                    out += flatten_errors(item, f"{path}[{index}]")
    else:
        out.append({"field": path, "message": str(detail)})
    return out


class Validates(Protocol):
    """A serializer or form: `is_valid()`, then `errors` or `validated_data`."""

    def is_valid(self, *, raise_exception: bool = False) -> bool: ...

    @property
    def errors(self) -> Any: ...


def check_valid(serializer: Validates) -> None:
    """`serializer.is_valid()`, raising Invalid with its errors (keyed by field path) instead
    of DRF's HTTP ValidationError, for service functions that validate with a serializer."""
    if not serializer.is_valid():
        raise Invalid(serializer.errors)
