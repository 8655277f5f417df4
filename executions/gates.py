"""The seam through which the run lifecycle asks "may this deploy run now?" without knowing who
answers: apps that park runs (approvals: manual deploys and approval gates) register a `Gate`
in their `AppConfig.ready`, and the engine, `do_terminate` and the recovery loop call the
registered gates. Executions never imports the apps that register here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from executions.models import Execution, StageRun
    from workflows.models import WorkflowEnvironment


class Gate(Protocol):
    """What a gate answers for the lifecycle. All calls run in the caller's transaction."""

    def waiting_status(self, step: WorkflowEnvironment) -> str | None:
        """The waiting ExecutionStatus a deploy to `step` parks the run in, or None to go on."""
        ...

    def on_reached(self, execution: Execution, stage: StageRun, waiting: str) -> None:
        """The run was just parked at `stage` in `waiting` (open a request, notify people)."""
        ...

    def on_run_ended(self, execution: Execution, reason: str) -> None:
        """A waiting run ended without passing the gate (terminated): close what is open."""
        ...

    def expire_due(self) -> int:
        """Ends the waits that ran out of time; returns how many. Called by the workers'
        recovery loop every few seconds."""
        ...


_gates: list[Gate] = []


def register_gate(gate: Gate) -> None:
    """Adds `gate` once (AppConfig.ready may run more than once in tests)."""
    if not any(type(known) is type(gate) for known in _gates):
        _gates.append(gate)


def registered_gates() -> tuple[Gate, ...]:
    return tuple(_gates)


def waiting_status_for(step: WorkflowEnvironment) -> tuple[Gate, str] | None:
    """The first registered gate that parks a deploy to `step`, with its waiting status."""
    for gate in _gates:
        waiting = gate.waiting_status(step)
        if waiting is not None:
            return gate, waiting
    return None
