"""detect-secrets over a checkout, as findings with a file, a line, a type and a hash.

The CLI runs in its own process (`python -m detect_secrets scan`), so a terminate can kill it.
`--no-verify`: otherwise some plugins "verify" a key they found by calling its provider with it
(AWS, Slack ...), which would send the user's secret off this machine.

Its output is detect-secrets' baseline format: a SHA-1 of each secret, never the secret itself.
The findings keep only that hash, so neither the report nor the log can leak the value.

A `.secrets.baseline` committed in the repository lists secrets already looked at: those are
dropped, as `detect-secrets-hook` does, unless an audit marked them as real (`is_secret: true`).
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

from integrations.errors import ProviderError
from integrations.scanners import ScanJob

TOOL = "detect-secrets"
BASELINE = ".secrets.baseline"
# Git's own files are not the repository's content; the baseline holds only hashes.
EXCLUDE_FILES = r"(^|/)\.git/|^\.secrets\.baseline$"
# Every finding counts as this severity against the workflow's fail-on threshold.
SEVERITY = "high"

LABEL = "detect-secrets"


class DetectSecretsError(ProviderError):
    """detect-secrets failed or printed no baseline."""


def check() -> list[str]:
    return []  # it comes with the worker's Python packages


def scan(job: ScanJob) -> dict[str, Any]:
    """Scans every file of the checkout."""
    src, run = job.src, job.run
    argv = [sys.executable, "-m", "detect_secrets", "scan", "--all-files", "--no-verify"]
    code, out, err = run([*argv, "--exclude-files", EXCLUDE_FILES, "."], cwd=src, env={})
    if code != 0:
        raise DetectSecretsError(
            f"detect-secrets failed (exit code {code}): {last_line(err)}", system=True
        )
    try:
        results = json.loads(out)["results"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DetectSecretsError("detect-secrets printed no baseline JSON", system=True) from exc
    accepted = accepted_secrets(src / BASELINE)
    findings, skipped = [], 0
    for filename, items in sorted(results.items()):
        for item in items:
            if (filename, item.get("hashed_secret")) in accepted:
                skipped += 1
                continue
            findings.append(
                {
                    "severity": SEVERITY,
                    "type": item.get("type", "secret"),
                    "file": filename,
                    "line": item.get("line_number"),
                    "hashed_secret": item.get("hashed_secret", ""),
                }
            )
    return {
        "tool": TOOL,
        "version": importlib.metadata.version("detect-secrets"),
        "findings": findings,
        "details": {"accepted_by_baseline": skipped, "verification": "off"},
    }


def accepted_secrets(baseline: Path) -> set[tuple[str, str]]:
    """(file, hash) pairs of the repository's baseline, minus those audited as real."""
    try:
        results = json.loads(baseline.read_text())["results"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {
        (filename, item.get("hashed_secret"))
        for filename, items in results.items()
        for item in items
        if item.get("is_secret") is not True
    }


def last_line(text: str) -> str:
    return next((x.strip() for x in reversed(text.splitlines()) if x.strip()), "no output")[:300]
