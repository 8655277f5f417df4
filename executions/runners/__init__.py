"""One small runner class per kind of stage; adding a kind means adding one file here and one
`runners.register` line below."""

from __future__ import annotations

from typing import Any, Protocol

from atmosly.plugins import Registry
from executions.runners.base import Context, Runner, StageError
from executions.runners.build import Build
from executions.runners.deploy import Deploy
from executions.runners.push import Push
from executions.runners.scan import Scan
from executions.runners.script import Script
from executions.runners.source import Source

__all__ = ["Context", "Runner", "StageError", "StageRunner", "runner_for", "runners"]

RUNNERS: dict[str, type[Runner]] = {
    "source": Source,
    "script": Script,
    "scan": Scan,
    "build": Build,
    "push": Push,
    "deploy": Deploy,
}


class StageRunner(Protocol):
    kind: str

    def run(self, ctx: Context) -> dict[str, Any]:
        """Does the stage's work, logs through ctx.log, returns what later stages need.
        Raises StageError, or Terminated when the run is terminated."""
        ...


# Keys are executions.models stage kinds.
runners: Registry[type[StageRunner]] = Registry("stage kind")
runners.register("source", "executions.runners.source:Source")
runners.register("script", "executions.runners.script:Script")
runners.register("scan", "executions.runners.scan:Scan")
runners.register("build", "executions.runners.build:Build")
runners.register("push", "executions.runners.push:Push")
runners.register("deploy", "executions.runners.deploy:Deploy")


def runner_for(kind: str) -> StageRunner:
    """A new runner for a stage of `kind`. Raises UnknownPlugin (a KeyError) for others."""
    return runners.get(kind)()
