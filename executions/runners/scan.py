"""Security scan stage: not built yet.

Brought by the "Security scanning" issue (detect-secrets, Trivy and SonarQube under
integrations/); until then a workflow with a scanner switched on ends Error at this stage
rather than passing a scan that never ran.
"""

from __future__ import annotations

from typing import Any

from executions.runners.base import Context, Runner, StageError


class Scan(Runner):
    kind = "scan"

    def run(self, ctx: Context) -> dict[str, Any]:
        raise StageError("Security scanning is not available yet in this build", system=True)
