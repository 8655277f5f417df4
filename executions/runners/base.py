"""What every stage runner gets (Context) and the one error type it raises (StageError)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from integrations.errors import Cancelled, ProviderError

if TYPE_CHECKING:
    from executions.logs import LogWriter
    from executions.models import Execution, StageRun
    from workflows.models import Workflow


class StageError(Exception):
    """A stage did not succeed. `system=False` (the default) means the user's code or config is
    at fault and the run ends Failed; `system=True` means the system failed (engine unreachable,
    bug) and the run ends Error. The message is the one line shown to the user."""

    def __init__(self, message: str, *, system: bool = False, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.system = system
        self.retryable = retryable

    # Set by the scan stage when it fails; the engine saves them with the failed stage.
    reports: list[dict[str, Any]]


class Terminated(Exception):
    """Raised inside a runner when the user asked to terminate the run."""


@contextmanager
def provider_errors() -> Iterator[None]:
    """Translates what the clients under integrations/ raise into what the engine handles:
    ProviderError → StageError (same message, `system` and `retryable`), Cancelled →
    Terminated (same message)."""
    try:
        yield
    except Cancelled as exc:
        raise Terminated(*exc.args) from exc
    except ProviderError as exc:
        raise StageError(exc.message, system=exc.system, retryable=exc.retryable) from exc


def translating(
    run: Callable[[Runner, Context], dict[str, Any]],
) -> Callable[[Runner, Context], dict[str, Any]]:
    """`run` with provider_errors around it."""

    @functools.wraps(run)
    def translated(self: Runner, ctx: Context) -> dict[str, Any]:
        with provider_errors():
            return run(self, ctx)

    return translated


@dataclass
class Context:
    execution: Execution
    stage: StageRun
    workflow: Workflow
    workspace: Path
    log: LogWriter
    # Values of the run's secret variables, in clear, for the runners that need them; the log
    # writer masks every one of them.
    secrets: dict[str, str] = field(default_factory=dict)
    build_args: dict[str, str] = field(default_factory=dict)
    runtime_env: dict[str, str] = field(default_factory=dict)
    # Set by the engine when the user asks to terminate; runners poll `check_cancelled()` or
    # register a `on_cancel` callback that stops what the engine is doing right now.
    cancelled: threading.Event = field(default_factory=threading.Event)
    cancel_callbacks: list[Callable[[], object]] = field(default_factory=list)
    # What earlier stages produced (commit sha, image id, digest ...), read by later ones.
    outputs: dict[str, Any] = field(default_factory=dict)

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Terminated()

    def on_cancel(self, callback: Callable[[], object]) -> None:
        self.cancel_callbacks.append(callback)
        if self.cancelled.is_set():
            callback()


class Runner:
    kind: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every runner's `run` translates what the clients raise (see provider_errors), so no
        # client error reaches the engine untranslated, whichever call a runner forgot to wrap.
        super().__init_subclass__(**kwargs)
        if "run" in cls.__dict__:
            cls.run = translating(cls.__dict__["run"])  # type: ignore[method-assign,assignment]

    def run(self, ctx: Context) -> dict[str, Any]:
        """Does the stage's work, logs through ctx.log, returns what later stages need."""
        raise NotImplementedError
