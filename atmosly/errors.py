"""Domain errors that service functions raise; the surfaces translate them (the API's one
exception handler in `atmosly.api_errors`, pages' messages). Service functions never raise
HTTP exceptions, so a background loop never has to catch one."""

from __future__ import annotations


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
