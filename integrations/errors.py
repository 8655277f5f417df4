"""The errors every client under integrations/ raises, so clients know nothing of runs.

A client raises its provider's subclass of `ProviderError` when the outside system refuses or
fails, and `Cancelled` when the caller's cancel event was set while it waited. The stage
runners (executions/runners/) translate them: ProviderError → StageError with the same
message and flags, Cancelled → Terminated (see `executions.runners.base.provider_errors`).
"""

from __future__ import annotations


class ProviderError(Exception):
    """An outside system refused or failed. `system=False` (the default) means the user's
    settings or code are at fault; `system=True` means the system is (unreachable, not set
    up). `retryable` says a second attempt may succeed. The message is one line for the user
    and never holds a secret."""

    def __init__(self, message: str, *, system: bool = False, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.system = system
        self.retryable = retryable


class Cancelled(Exception):
    """The caller's cancel event was set: the client stopped waiting. The message, if any,
    says in what state it left the outside system."""
