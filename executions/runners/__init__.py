"""One small runner class per kind of stage; adding a kind means adding one file here and one
line in `runner_for`."""

from __future__ import annotations

from executions.runners.base import Context, Runner, StageError

__all__ = ["Context", "Runner", "StageError", "runner_for"]


def runner_for(kind: str) -> Runner:
    from executions.runners.build import Build
    from executions.runners.deploy import Deploy
    from executions.runners.push import Push
    from executions.runners.scan import Scan
    from executions.runners.script import Script
    from executions.runners.source import Source

    runners: dict[str, type[Runner]] = {
        "source": Source,
        "script": Script,
        "scan": Scan,
        "build": Build,
        "push": Push,
        "deploy": Deploy,
    }
    return runners[kind]()
