"""Stops one podman build's RUN steps, because closing the build request does not.

Measured on podman 4.3 / buildah 1.28 (the Docker-compatible API service): when the client
closes `POST /build`, the RUN step in progress keeps running to its end, and removing the
build's working container does not stop it either. Each RUN step is its own runc container
(`buildah-buildah<N>`, bundle `/var/tmp/buildah<N>`); `runc kill` stops it, after which the
build fails at that step, cleans up (forcerm) and ends its stream within about 0.1 s.

To kill only this build's steps while other builds run, the build is started with a marker
host in `extrahosts` (podman's compat API expects a JSON list there); buildah writes it into
each step's `/etc/hosts`, which lives in the step's bundle as `hosts`. The marker does not
change the layer cache. Docker Engine needs none of this: closing the request cancels there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

MARKER_DOMAIN = "workflows-build.invalid"
STEP_PREFIX = "buildah-"


@dataclass(frozen=True)
class Step:
    id: str
    pid: int
    status: str
    bundle: str


def build_token(execution_id: int, stage_run_id: int, started_at: datetime) -> str:
    """The marker of one stage run's build: not random but derived from what the database
    keeps, so that whoever recovers a run whose worker died can find the build's steps."""
    digest = hashlib.sha256(f"{stage_run_id}:{started_at.timestamp():.6f}".encode()).hexdigest()
    return f"exec-{execution_id}-{digest[:8]}"


def marker_host(token: str) -> str:
    return f"{token}.{MARKER_DOMAIN}"


def extra_hosts(token: str) -> str:
    """The `extra_hosts` value for docker SDK's `api.build` that marks the build's steps."""
    return json.dumps([f"{marker_host(token)}:127.0.0.1"])


def _runc(*args: str) -> subprocess.CompletedProcess | None:
    runc = shutil.which("runc") or "/usr/sbin/runc"
    try:
        return subprocess.run(
            [runc, *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def list_steps(token: str | None = None) -> list[Step]:
    """Build step containers on this machine: all of them, or only those of one build."""
    for _ in range(3):  # runc list fails now and then when a step ends while it reads
        done = _runc("list", "--format", "json")
        if done is not None and done.returncode == 0:
            break
    else:
        return []
    steps = []
    for item in json.loads(done.stdout or "null") or []:
        if not item.get("id", "").startswith(STEP_PREFIX):
            continue
        if token is not None:
            try:
                hosts = (Path(item["bundle"]) / "hosts").read_text()
            except OSError:
                continue  # the step ended and buildah removed its bundle meanwhile
            if marker_host(token) not in hosts.split():
                continue
        steps.append(Step(item["id"], item.get("pid", 0), item.get("status", ""), item["bundle"]))
    return steps


def kill_steps(token: str) -> int:
    """SIGKILLs the build's running steps (their pid namespace goes with them)."""
    killed = 0
    for step in list_steps(token):
        if step.status == "running":
            done = _runc("kill", step.id, "KILL")
            killed += bool(done and done.returncode == 0)
    return killed


def remove_stopped_steps(token: str) -> None:
    """Deletes the build's steps left stopped, which buildah removes itself unless its build
    process went away too (engine restarted)."""
    for step in list_steps(token):
        if step.status == "stopped":
            _runc("delete", "--force", step.id)
