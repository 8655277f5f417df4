"""One small runner class per kind of stage; adding a kind means adding one file here and one
line in RUNNERS."""

from __future__ import annotations

from executions.runners.base import Context, Runner, StageError
from executions.runners.build import Build
from executions.runners.deploy import Deploy
from executions.runners.push import Push
from executions.runners.scan import Scan
from executions.runners.script import Script
from executions.runners.source import Source

__all__ = ["Context", "Runner", "StageError", "runner_for"]

RUNNERS: dict[str, type[Runner]] = {
    "source": Source,
    "script": Script,
    "scan": Scan,
    "build": Build,
    "push": Push,
    "deploy": Deploy,
}


def runner_for(kind: str) -> Runner:
    """A new runner for a stage of `kind` (StageKind); KeyError for an unknown kind."""
    return RUNNERS[kind]()
