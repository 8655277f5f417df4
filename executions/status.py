"""The execution status machine: the spec's eleven statuses and the moves between them.

| from                | to                                                                  |
|---------------------|---------------------------------------------------------------------|
| Pending             | Running, Terminated, Error                                          |
| Running             | Succeeded, Failed, Error, Deployment Pending, Approval Pending,     |
|                     | Terminating                                                         |
| Deployment Pending  | Running, Terminated, Error                                          |
| Approval Pending    | Running, Approval Rejected, Terminated, Error                        |
| Terminating         | Terminated, Termination Failed                                      |
| (terminal)          | nothing: Succeeded, Failed, Error, Approval Rejected, Terminated,   |
|                     | Termination Failed                                                  |

A run that is Pending or waiting has nothing running, so terminating it goes straight to
Terminated; only a Running one passes through Terminating while the worker stops the engine.
"""

from __future__ import annotations

from django.db import models


class ExecutionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"
    DEPLOYMENT_PENDING = "deployment_pending", "Deployment Pending"
    APPROVAL_PENDING = "approval_pending", "Approval Pending"
    APPROVAL_REJECTED = "approval_rejected", "Approval Rejected"
    TERMINATING = "terminating", "Terminating"
    TERMINATED = "terminated", "Terminated"
    TERMINATION_FAILED = "termination_failed", "Termination Failed"


S = ExecutionStatus

ACTIVE = frozenset({S.PENDING, S.RUNNING, S.TERMINATING})
WAITING = frozenset({S.DEPLOYMENT_PENDING, S.APPROVAL_PENDING})
TERMINAL = frozenset(
    {S.SUCCEEDED, S.FAILED, S.ERROR, S.APPROVAL_REJECTED, S.TERMINATED, S.TERMINATION_FAILED}
)
# Not ended yet, as a fixed list: a partial index's condition must match the query's exactly.
UNFINISHED = sorted(ACTIVE | WAITING)

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.RUNNING, S.TERMINATED, S.ERROR}),
    S.RUNNING: frozenset(
        {
            S.SUCCEEDED,
            S.FAILED,
            S.ERROR,
            S.DEPLOYMENT_PENDING,
            S.APPROVAL_PENDING,
            S.TERMINATING,
        }
    ),
    S.DEPLOYMENT_PENDING: frozenset({S.RUNNING, S.TERMINATED, S.ERROR}),
    S.APPROVAL_PENDING: frozenset({S.RUNNING, S.APPROVAL_REJECTED, S.TERMINATED, S.ERROR}),
    S.TERMINATING: frozenset({S.TERMINATED, S.TERMINATION_FAILED}),
    **{status: frozenset() for status in TERMINAL},
}


def can_move(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


class StageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"
    SKIPPED = "skipped", "Skipped"
    TERMINATED = "terminated", "Terminated"


STAGE_TERMINAL = frozenset(
    {
        StageStatus.SUCCEEDED,
        StageStatus.FAILED,
        StageStatus.ERROR,
        StageStatus.SKIPPED,
        StageStatus.TERMINATED,
    }
)

STAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    StageStatus.PENDING: frozenset(
        {StageStatus.RUNNING, StageStatus.WAITING, StageStatus.SKIPPED, StageStatus.TERMINATED}
    ),
    StageStatus.WAITING: frozenset(
        {StageStatus.RUNNING, StageStatus.SKIPPED, StageStatus.TERMINATED, StageStatus.FAILED}
    ),
    StageStatus.RUNNING: frozenset(
        {
            StageStatus.SUCCEEDED,
            StageStatus.FAILED,
            StageStatus.ERROR,
            StageStatus.TERMINATED,
        }
    ),
    **{status: frozenset() for status in STAGE_TERMINAL},
}
