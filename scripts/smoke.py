#!/usr/bin/env python3
"""Proves each real part works before `scripts/services start` says "up".

    scripts/smoke.py --engine unix:///…/podman.sock --run-dir .run [--test] [--force]

Each check does the real thing the product (or its tests) does, once and small: a container
runs, a pod plays and goes away (the local deploy target's path), a build runs a RUN step, an
image is pushed to both registries, a repository is cloned over smart HTTP, and for tests
headless Chromium renders a page, moto answers, redis-server answers and the project's PostgreSQL
cluster (started by `scripts/services start --test`) creates and drops a database. A failure prints one
line naming the missing piece and the Debian package or setting that brings it, and exits 1.

The checks that take longer than about 0.3 s run once per machine state: their success is
remembered in `<run-dir>/smoke-ok-<key>`, where the key covers the installed versions of every
package the checks depend on and the podman configuration, so removing or upgrading any of them
runs them again. `--force` ignores what was remembered. Stdlib only: it runs before the venv.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/busybox:latest"
ARM64_IMAGE = "localhost/busybox:arm64"
OPEN_REGISTRY = "127.0.0.1:5000"
AUTH_REGISTRY = "127.0.0.1:5001"
AUTH_CREDS = "ci:ci-password"
# The scale mode's test cluster (scripts/services: PG_PORT, PG_USER, PG_PASSWORD).
PG_ADDR = ("127.0.0.1", "5433")
PG_USER = "workflows"
PG_PASSWORD = "workflows-test-password"
CONFIG_FILES = [
    Path("/etc/containers/containers.conf.d/50-workflows-local.conf"),
    Path("/etc/containers/registries.conf.d/50-workflows-local.conf"),
]

# What a failing check's output says → the piece that is missing and what brings it back.
# Matched in order against the lowercased output; the first hit names the fix.
HINTS: list[tuple[str, str]] = [
    ("podman: executable file not found", "podman is missing: apt-get install podman"),
    ("cannot connect to podman", "the podman API service does not answer: scripts/services start"),
    ("catatonit", "podman's pause/init binary catatonit is missing: apt-get install catatonit"),
    ("conmon", "podman's container monitor is missing: apt-get install conmon"),
    ('"runc"', "the OCI runtime runc is missing: apt-get install runc"),
    ("runc: executable file not found", "the OCI runtime runc is missing: apt-get install runc"),
    (
        "cni",
        "container networking plugins are missing: apt-get install containernetworking-plugins",
    ),
    ("netavark", "container networking is missing: apt-get install containernetworking-plugins"),
    ("buildah", "buildah is missing: apt-get install buildah"),
    ("cgroups", 'crun cannot run here: containers.conf needs runtime = "runc" (scripts/services)'),
    (
        "http: server gave http response to https client",
        "the local registries must be marked insecure in registries.conf.d before podman starts",
    ),
    ("unauthorized", "the htpasswd registry refused ci's login: rerun scripts/services start"),
    (
        "exec format error",
        "arm64 emulation is not registered: apt-get install qemu-user-static, then scripts/services start",
    ),
    ("chromium", "headless Chromium is missing: apt-get install chromium"),
    ("moto_server", "moto's server is missing from .venv: scripts/bootstrap --test"),
    ("redis", "redis-server is missing: apt-get install redis-server"),
    ("psql", "PostgreSQL's client is missing: apt-get install postgresql"),
    (
        "connection refused",
        "the PostgreSQL test cluster does not answer on 127.0.0.1:5433: scripts/services start "
        "--test (log: .run/postgres.log)",
    ),
    ("git-http-backend", "git's http-backend is missing: apt-get install git"),
]

# Packages whose installed version is part of the "remembered" key.
KEY_PACKAGES = [
    "podman",
    "buildah",
    "runc",
    "conmon",
    "catatonit",
    "containernetworking-plugins",
    "golang-github-containers-common",
    "docker-registry",
    "busybox-static",
    "git",
    "chromium",
    "redis-server",
    "qemu-user-static",
]


class CheckFailed(Exception):
    def __init__(self, what: str, output: str):
        super().__init__(what)
        self.what = what
        self.output = output


@dataclass
class Check:
    name: str
    run: Callable[[], None]
    slow: bool  # remembered once it passed on this machine state
    test_only: bool = False


def sh(what: str, *argv: str, timeout: float = 60, env: dict[str, str] | None = None) -> str:
    """Runs argv; raises CheckFailed(what, output) on a non-zero exit or a missing program."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except FileNotFoundError as exc:
        raise CheckFailed(what, f"{argv[0]}: executable file not found ({exc})") from None
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(what, f"timed out after {timeout} s: {exc.stderr or ''}") from None
    if done.returncode != 0:
        raise CheckFailed(what, f"{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Smoke:
    def __init__(self, engine: str, run_dir: Path, venv: Path):
        self.engine = engine
        self.run_dir = run_dir.resolve()
        self.venv = venv
        self.tag = f"smoke-{os.getpid()}"
        self.tmp = Path(tempfile.mkdtemp(prefix="smoke-", dir=self.run_dir))

    def podman(self, what: str, *args: str, timeout: float = 120) -> str:
        return sh(what, "podman", "--remote", "--url", self.engine, *args, timeout=timeout)

    # -- the image engine ------------------------------------------------------------------

    def container_runs(self) -> None:
        out = self.podman("a container runs", "run", "--rm", BASE_IMAGE, "echo", "smoke-ok")
        if "smoke-ok" not in out:
            raise CheckFailed("a container runs", out)

    def arm64_runs(self) -> None:
        out = self.podman(
            "an arm64 container runs (QEMU user emulation)",
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            ARM64_IMAGE,
            "uname",
            "-m",
        )
        if "aarch64" not in out:
            raise CheckFailed("an arm64 container runs (QEMU user emulation)", out)

    def pod_plays(self) -> None:
        name = f"workflows-{self.tag}"
        kube = self.tmp / "pod.yaml"
        kube.write_text(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\nspec:\n"
            "  containers:\n  - name: main\n    image: " + BASE_IMAGE + "\n"
            "    command: [sleep, '30']\n"
        )
        try:
            self.podman("a pod plays (the local deploy target)", "kube", "play", str(kube))
        finally:
            subprocess.run(
                ["podman", "--remote", "--url", self.engine, "kube", "down", str(kube)],
                capture_output=True,
                timeout=60,
                check=False,
            )

    def build_runs(self) -> None:
        ctx = self.tmp / "build"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo built > /smoke\n")
        self.podman(
            "a build runs a RUN step",
            "build",
            "--layers=false",
            "-t",
            f"localhost/workflows-smoke:{self.tag}",
            str(ctx),
            timeout=180,
        )

    def pushes(self) -> None:
        image = f"localhost/workflows-smoke:{self.tag}"
        try:
            for registry, creds in ((OPEN_REGISTRY, None), (AUTH_REGISTRY, AUTH_CREDS)):
                target = f"{registry}/workflows-smoke:latest"
                what = f"a push to the registry on {registry}"
                args = ["push", "--tls-verify=false"]
                if creds:
                    args.append(f"--creds={creds}")
                self.podman(what, "tag", image, target)
                try:
                    self.podman(what, *args, target, timeout=120)
                finally:
                    subprocess.run(
                        ["podman", "--remote", "--url", self.engine, "rmi", target],
                        capture_output=True,
                        timeout=60,
                        check=False,
                    )
        finally:
            subprocess.run(
                ["podman", "--remote", "--url", self.engine, "rmi", image],
                capture_output=True,
                timeout=60,
                check=False,
            )

    # -- git ----------------------------------------------------------------------------------

    def git_clone(self) -> None:
        what = "a clone from the git smart-HTTP server"
        repos = self.tmp / "git"
        repos.mkdir()
        sh(what, "git", "init", "-q", "--bare", "-b", "main", str(repos / "smoke.git"))
        work = self.tmp / "work"
        ident = ["-c", "user.name=smoke", "-c", "user.email=smoke@localhost"]
        sh(what, "git", "init", "-q", "-b", "main", str(work))
        sh(what, "git", "-C", str(work), *ident, "commit", "-q", "--allow-empty", "-m", "smoke")
        sh(what, "git", "-C", str(work), "push", "-q", str(repos / "smoke.git"), "main")
        server = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts" / "git_http_server.py"),
                "--root",
                str(repos),
                "--port",
                "0",
                "--user",
                "smoke",
                "--quiet",
            ],
            env={**os.environ, "GIT_HTTP_PASSWORD": "smoke-pw"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = server.stdout.readline() if server.stdout else ""
            port = re.search(r"listening on (\d+)", first)
            if not port:
                raise CheckFailed(what, first + (server.stderr.read() if server.stderr else ""))
            url = f"http://smoke:smoke-pw@127.0.0.1:{port.group(1)}/smoke.git"
            sh(what, "git", "clone", "-q", url, str(self.tmp / "clone"))
        finally:
            server.terminate()
            server.wait(10)

    # -- test-only parts ------------------------------------------------------------------------

    def chromium_renders(self) -> None:
        what = "headless Chromium renders a page"
        exe = shutil.which("chromium") or "/usr/bin/chromium"
        page = self.tmp / "page.html"
        page.write_text("<!doctype html><title>t</title><p id=x>smoke-ok</p>")
        out = sh(
            what,
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={self.tmp / 'chromium'}",
            "--dump-dom",
            page.as_uri(),
            timeout=60,
        )
        if "smoke-ok" not in out:
            raise CheckFailed(what, out)

    def moto_answers(self) -> None:
        what = "moto_server answers (AWS tests)"
        exe = self.venv / "bin" / "moto_server"
        port = free_port()
        proc = self._spawn(what, [str(exe), "-H", "127.0.0.1", "-p", str(port)])
        try:
            self._wait_http(what, f"http://127.0.0.1:{port}/moto-api/", proc)
        finally:
            self._stop(proc)

    def redis_answers(self) -> None:
        what = "redis-server answers (Redis tests)"
        sock = self.tmp / "redis.sock"
        proc = self._spawn(
            what, ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", ""]
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if "PONG" in sh(what, "redis-cli", "-s", str(sock), "ping", timeout=5):
                        return
                except CheckFailed:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                time.sleep(0.05)
        finally:
            self._stop(proc)

    def postgres_answers(self) -> None:
        what = "postgres answers (scale-mode tests)"
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD, "PGCONNECT_TIMEOUT": "5"}
        psql = ["psql", "-h", PG_ADDR[0], "-p", PG_ADDR[1], "-U", PG_USER, "-d", "postgres"]
        name = f"smoke_{os.getpid()}"
        # What pytest-django does for each session: create a database, then drop it.
        sh(what, *psql, "-qc", f"CREATE DATABASE {name}", env=env, timeout=30)
        sh(what, *psql, "-qc", f"DROP DATABASE {name}", env=env, timeout=30)

    def _spawn(self, what: str, argv: list[str]) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise CheckFailed(what, f"{argv[0]}: executable file not found") from None

    def _wait_http(self, what: str, url: str, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise CheckFailed(what, proc.stderr.read().decode() if proc.stderr else "")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise CheckFailed(what, f"no answer from {url} within 20 s")

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def machine_key() -> str:
    """A digest of what the remembered checks depend on: package versions and configuration."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Version} ${Status}\n", *KEY_PACKAGES],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    digest = hashlib.sha256(out.encode())
    for path in CONFIG_FILES:
        digest.update(path.read_bytes() if path.exists() else b"-")
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def hint_for(output: str) -> str:
    low = output.lower()
    for needle, hint in HINTS:
        if needle in low:
            return hint
    last = [line for line in output.strip().splitlines() if line.strip()]
    return last[-1][:300] if last else "no output"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", required=True, help="the engine's DOCKER_HOST")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--test", action="store_true", help="also the parts tests need")
    parser.add_argument("--force", action="store_true", help="ignore remembered results")
    args = parser.parse_args()

    smoke = Smoke(args.engine, args.run_dir, args.venv)
    checks = [
        Check("a container runs", smoke.container_runs, slow=False),
        Check("a clone from the git server", smoke.git_clone, slow=False),
        Check("a pod plays and is removed", smoke.pod_plays, slow=True),
        Check("an arm64 container runs", smoke.arm64_runs, slow=True),
        Check("a build with a RUN step", smoke.build_runs, slow=True),
        # Pushes what the build check built, so it is remembered with it.
        Check("a push to each registry", smoke.pushes, slow=True),
        Check("redis-server answers", smoke.redis_answers, slow=False, test_only=True),
        Check("postgres answers", smoke.postgres_answers, slow=False, test_only=True),
        Check("headless Chromium opens a page", smoke.chromium_renders, slow=True, test_only=True),
        Check("moto answers", smoke.moto_answers, slow=True, test_only=True),
    ]
    checks = [c for c in checks if args.test or not c.test_only]
    key = machine_key()
    # A machine that passed the test set passed the run set too.
    stamps = [args.run_dir / f"smoke-ok-test-{key}"]
    if not args.test:
        stamps.append(args.run_dir / f"smoke-ok-run-{key}")
    stamp = stamps[-1]
    remembered = any(s.exists() for s in stamps) and not args.force
    started = time.monotonic()
    ran: list[str] = []
    try:
        for check in checks:
            if check.slow and remembered:
                continue
            t0 = time.monotonic()
            check.run()
            ran.append(f"{check.name} {time.monotonic() - t0:.2f} s")
    except CheckFailed as exc:
        print(f"[services] SMOKE FAILED: {exc.what}: {hint_for(exc.output)}", file=sys.stderr)
        detail = args.run_dir / "smoke-failure.log"
        detail.write_text(f"{exc.what}\n{exc.output}\n")
        print(f"[services] full output: {detail}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(smoke.tmp, ignore_errors=True)
    if not remembered:
        for old in args.run_dir.glob("smoke-ok-*"):
            if not old.name.endswith(key):
                old.unlink()
        stamp.touch()
    skipped = "" if not remembered else " (slow checks passed before on this machine state)"
    print(
        f"[services] smoke checks passed in {time.monotonic() - started:.2f} s{skipped}: "
        + "; ".join(ran),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
