"""`scripts/services` proves each part works, and says what is missing in one line (issue 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scripts" / "smoke.py"


def smoke(tmp_path: Path, engine: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, str(SMOKE), "--engine", engine, "--run-dir", str(tmp_path), "--force"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_missing_program_fails_with_one_line_naming_its_package(tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    # Only what the checks need to get as far as the engine: no podman on this PATH.
    (bare / "dpkg-query").symlink_to("/usr/bin/dpkg-query")
    done = smoke(tmp_path, "unix:///nonexistent.sock", path=str(bare))
    assert done.returncode == 1
    first = done.stderr.splitlines()[0]
    assert first == (
        "[services] SMOKE FAILED: a container runs: podman is missing: apt-get install podman"
    )
    assert (tmp_path / "smoke-failure.log").exists()
    assert not list(tmp_path.glob("smoke-ok-*"))


def test_an_engine_that_does_not_answer_is_named(tmp_path):
    done = smoke(tmp_path, f"unix://{tmp_path}/nothing.sock")
    assert done.returncode == 1
    assert done.stderr.startswith("[services] SMOKE FAILED: a container runs: ")
    assert "podman API service does not answer" in done.stderr.splitlines()[0]


@pytest.mark.engine
def test_every_check_passes_on_this_machine_and_is_remembered(real_services, tmp_path):
    done = smoke(tmp_path, real_services["DOCKER_HOST"])
    assert done.returncode == 0, done.stderr
    for check in ("a container runs", "a pod plays", "a build with a RUN step", "a push to each"):
        assert check in done.stderr
    assert len(list(tmp_path.glob("smoke-ok-run-*"))) == 1
