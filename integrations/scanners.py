"""Scanners of the Scan stage: one folder each under integrations/, one interface and registry
here. The Scan stage runs those the workflow switches on (`scan_<name>`), in this order.

A scanner is a module with a LABEL, `check()` and `scan(job)`. It raises its own
ProviderError subclass when it is missing, fails, or its server refuses, and `Cancelled` when
`job.cancelled` is set while it waits. Adding one: its folder, one `scanners.register` line and
a `scan_<name>` switch on Workflow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from atmosly.plugins import Registry

# run(argv, cwd=..., env=...) → (exit code, stdout, stderr): runs a process the stage can kill.
Run = Callable[..., tuple[int, str, str]]


@dataclass(frozen=True)
class ScanJob:
    src: Path  # the checkout
    workspace: Path  # the stage's own directory, for the scanner's working files
    workflow: Any  # workflows.models.Workflow
    log: Callable[[str], None]
    run: Run
    cancelled: threading.Event


class Scanner(Protocol):
    LABEL: str  # as the log names it: "Trivy"

    def check(self) -> list[str]:
        """Refuses (system=True) a scanner switched on but not set up, before anything runs;
        returns the values (tokens) the log and reports must mask."""
        ...

    def scan(self, job: ScanJob) -> dict[str, Any]:
        """{"tool", "version", "findings": [{"severity", "file", "line", ...}], "details",
        "blocking": a reason the stage fails whatever the findings, or ""}."""
        ...


scanners: Registry[Scanner] = Registry("scanner")
scanners.register("detect_secrets", "integrations.detect_secrets.scanner")
scanners.register("trivy", "integrations.trivy.scanner")
scanners.register("sonarqube", "integrations.sonarqube.scanner")
