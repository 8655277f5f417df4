"""Deploy stage: brought by the deploy issue (Kubernetes environments in order, local target)."""

from __future__ import annotations

from typing import Any

from executions.runners.base import Context, Runner, StageError


class Deploy(Runner):
    kind = "deploy"

    def run(self, ctx: Context) -> dict[str, Any]:
        raise StageError("Deploy is not available yet in this build", system=True)
