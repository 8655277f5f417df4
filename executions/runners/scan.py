"""Security scan stage: detect-secrets, Trivy and SonarQube over the checkout, as the workflow
switches them on (clients under integrations/).

Each scanner's findings become a report (JSON, with counts by severity), returned under
"reports" (or carried by the StageError) for the engine to save, whether the stage passed or
not. The stage fails, as a user error, when a finding is at or above the workflow's
`scan_fail_on` or a quality gate failed; "never" only reports. detect-secrets findings count as
high, Trivy's as Trivy rates them (its UNKNOWN never fails a run). Reports and log hold hashes,
rules and places, never secrets.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

from django.utils import timezone
from django.utils.text import slugify

from executions.runners.base import Context, Runner, StageError, Terminated, provider_errors
from executions.runners.processes import ProcessGroup
from integrations.scanners import ScanJob, scanners

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
RANK = {"unknown": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
MAX_LOGGED = 50


class Scan(Runner):
    kind = "scan"

    def run(self, ctx: Context) -> dict[str, Any]:
        workflow, src = ctx.workflow, ctx.workspace / "src"
        if not src.is_dir():
            raise StageError("there is no checkout to scan", system=True)
        enabled = [scanners.get(n) for n in scanners.names() if getattr(workflow, f"scan_{n}")]
        # Refused before anything runs: a scanner switched on but not set up is a system fault.
        for scanner in enabled:
            ctx.log.add_secrets(scanner.check())
        self.ctx, self.processes = ctx, ProcessGroup(ctx)
        job = ScanJob(src, ctx.workspace, workflow, ctx.log.line, self.process, ctx.cancelled)
        reports: list[dict] = []
        findings: list[dict] = []
        blocking: list[str] = []
        try:
            for scanner in enabled:
                ctx.check_cancelled()
                ctx.log.line(f"Running {scanner.LABEL}")
                started = time.monotonic()
                with provider_errors():
                    result = scanner.scan(job)
                summary = summarize(result, round(time.monotonic() - started, 2))
                reports.append(self.report(ctx, result, summary))
                findings += [{"scanner": result["tool"], **f} for f in result["findings"]]
                blocking += [result["blocking"]] if result.get("blocking") else []
            self.log_table(findings)
            if reason := verdict(findings, blocking, workflow.scan_fail_on):
                raise StageError(reason)
        except StageError as exc:
            exc.reports = reports  # the engine saves them with the failed stage
            raise
        summaries = {r["kind"]: r["summary"] for r in reports}
        return {"scan_summary": summaries, "reports": reports}

    def report(self, ctx: Context, result: dict, summary: dict) -> dict[str, Any]:
        tool, execution = result["tool"], ctx.execution
        shown = ", ".join(f"{n} {s}" for s, n in summary["counts"].items() if n) or "no findings"
        gate = f", quality gate {summary['quality_gate']}" if "quality_gate" in summary else ""
        version = f" {result['version']}" if result["version"] else ""
        ctx.log.line(f"{tool}{version}: {shown}{gate} ({summary['duration_seconds']} s)")
        document = {
            "tool": tool,
            "version": result["version"],
            "workflow": ctx.workflow.name,
            "execution": execution.number,
            "commit": ctx.outputs.get("commit_sha") or execution.commit_sha,
            "generated_at": timezone.now().isoformat(),
            "fail_on": ctx.workflow.scan_fail_on,
            "summary": summary,
            "details": result.get("details", {}),
            "findings": result["findings"],
        }
        service = slugify(ctx.workflow.service.name) or "service"
        return {
            "kind": tool,
            "filename": f"{service}-{execution.number}-{tool}.json",
            "content_type": "application/json",
            # The run's secret variables and the SonarQube token are masked here as in the log.
            "content": ctx.log.mask(json.dumps(document, indent=2)),
            "summary": summary,
        }

    def log_table(self, findings: list[dict]) -> None:
        if not findings:
            self.ctx.log.line("No findings")
            return
        ordered = sorted(findings, key=lambda f: -RANK.get(f["severity"], 0))
        self.ctx.log.line(f"{'SEVERITY':<9} {'SCANNER':<15} {'RULE':<32} LOCATION")
        for f in ordered[:MAX_LOGGED]:
            rule = f.get("id") or f.get("type", "")
            place = f"{f['file']}:{f['line']}" if f.get("line") else f["file"]
            self.ctx.log.line(f"{f['severity']:<9} {f['scanner']:<15} {rule[:32]:<32} {place}")
        if len(ordered) > MAX_LOGGED:
            self.ctx.log.line(f"... and {len(ordered) - MAX_LOGGED} more in the reports")

    def process(
        self, argv: list[str], *, cwd: str | os.PathLike[str], env: dict[str, str]
    ) -> tuple[int, str, str]:
        """Runs a scanner in its own process group, killed as one on terminate, with a small
        environment: the worker's own variables (database, cloud credentials) stay out."""
        home = self.ctx.workspace / "scan-home"
        home.mkdir(parents=True, exist_ok=True)
        path = os.environ.get("PATH", "/usr/bin:/bin")
        environment = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", **env}
        proc = self.processes.start(argv, cwd=cwd, env=environment, text=True, errors="replace")
        out, err = proc.communicate()
        if self.ctx.cancelled.is_set():
            raise Terminated()
        return proc.returncode, out, err


def summarize(result: dict, seconds: float) -> dict[str, Any]:
    counts = Counter(f["severity"] for f in result["findings"])
    summary: dict[str, Any] = {
        "counts": {s: counts[s] for s in SEVERITIES if s != "unknown" or counts[s]},
        "total": len(result["findings"]),
        "duration_seconds": seconds,
    }
    if "quality_gate" in result["details"]:
        summary["quality_gate"] = result["details"]["quality_gate"]
        summary["failed_conditions"] = len(result["details"]["failed_conditions"])
    return summary


def verdict(findings: list[dict], blocking: list[str], fail_on: str) -> str:
    """The one-line reason the stage fails, or "" when it passes."""
    if fail_on == "never":
        return ""
    over = [f for f in findings if RANK.get(f["severity"], 0) >= RANK[fail_on]]
    parts = list(blocking)
    if over:
        severities = Counter(f["severity"] for f in over)
        tools = Counter(f["scanner"] for f in over)
        counts = ", ".join(f"{severities[s]} {s}" for s in SEVERITIES if severities[s])
        per_tool = ", ".join(f"{tool} {n}" for tool, n in tools.items())
        noun = "finding" if len(over) == 1 else "findings"
        parts.insert(0, f"{len(over)} {noun} at or above {fail_on} ({counts}; {per_tool})")
    return "; ".join(parts)
