"""Where a run's checkout lives on the worker, and how long a failed run keeps it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from executions.models import Execution

# A failed run keeps its checkout and built image this long, for a re-run from the failed stage.
KEEP_FAILED_HOURS = 24


def workspace_of(execution: Execution) -> Path:
    """`WORKSPACE_ROOT/execution-<id>`: the run's checkout, shared by its stages."""
    return Path(settings.WORKSPACE_ROOT) / f"execution-{execution.pk}"
