"""Pytest plugin: real local parts (image engine, registries, git over HTTP) for engine tests.

Load with ``pytest_plugins = ["tests.realparts"]``. Nothing here imports Django, so the plugin
also works in sessions run with ``-p no:django``.

Fixtures (session-scoped): ``real_services``, ``docker_client``, ``git_server``.
Helpers: ``sample_app_files``, ``tar_context``, ``unique_name``, ``list_build_step_containers``,
``kill_build_step_container``, ``build_step_working_container``, ``external_containers``,
``run_git``.

Measured on this machine (Debian 12, podman 4.3.1 API service, runc 1.1.5, buildah 1.28.2 inside
the podman service, cgroup v1 with cgroupfs):

* runc root: ``/run/runc`` (runc's default for uid 0). Each RUN step of a build through the
  podman API is its own runc container ``buildah-buildah<N>`` (bundle ``/var/tmp/buildah<N>``,
  process ``/bin/sh -c <the RUN line>``), listed by ``runc --root /run/runc list``; plain
  ``runc list`` shows the same. ``--root /run/containers/storage/overlay-containers`` and
  ``--root /run/libpod`` list nothing; podman's runroot is ``/run/containers/storage``.
* The step is invisible to ``podman ps``; ``podman ps -a --external`` shows only the build's
  working container (``busybox-working-container``, status "Storage"). The step's root overlay
  has ``upperdir=<graphroot>/overlay/<layer>/diff`` and ``<graphroot>/overlay-containers/
  containers.json`` maps that layer to the working container (``build_step_working_container``).
* ``runc kill <id>`` (default SIGTERM) does nothing to ``RUN echo x && sleep 60``: PID 1 is ``sh``,
  which ignores SIGTERM (still running 3 s later). ``runc kill <id> KILL`` ends it: the build
  stream yields ``{'stream': 'container exited on killed\\n'}`` then an ``error`` chunk
  ('building at STEP "RUN ...": while running runtime: exit status 1') and ends 30-50 ms after the
  kill. With ``rm=True, forcerm=True`` the ``buildah-`` runc container and the working container
  are gone by then.
* Closing the build stream (generator and client closed) does NOT stop the step: it was still in
  ``runc list`` 3 s later. Stopping a build therefore means killing its step container.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import docker

ROOT = Path(__file__).resolve().parent.parent
SERVICES_SCRIPT = ROOT / "scripts" / "services"
GIT_SERVER_SCRIPT = ROOT / "scripts" / "git_http_server.py"

# See the module docstring: buildah's step containers live under runc's default root.
RUNC_ROOT = "/run/runc"
BASE_IMAGE = "localhost/busybox:latest"

GIT_USER = "git"
GIT_PASSWORD = "git-secret-pw"

# A cold machine installs Debian packages first (about 20 s measured, slower on a bad mirror).
SERVICES_START_TIMEOUT = 900

# ---------------------------------------------------------------------------------------------
# services


_services_env: dict[str, str] | None = None
_services_lock = threading.Lock()


def start_real_services() -> dict[str, str]:
    """Start (or reuse) the local services and export their settings into os.environ."""
    global _services_env
    with _services_lock:
        if _services_env is None:
            started = time.monotonic()
            start = _run_services("start", SERVICES_START_TIMEOUT)
            env_out = _run_services("env", 60)
            parsed = parse_export_lines(env_out.stdout)
            required = {
                "DOCKER_HOST",
                "ATMOSLY_TEST_REGISTRY",
                "ATMOSLY_TEST_AUTH_REGISTRY",
                "ATMOSLY_TEST_AUTH_REGISTRY_USER",
                "ATMOSLY_TEST_AUTH_REGISTRY_PASSWORD",
            }
            if missing := required - parsed.keys():
                raise RuntimeError(
                    f"scripts/services env did not print {sorted(missing)}:\n{env_out.stdout}"
                )
            os.environ.update(parsed)
            _services_env = parsed
            sys.stderr.write(
                f"\n[realparts] services ready in {time.monotonic() - started:.2f} s"
                f"{_indent(start.stderr)}\n"
            )
        return dict(_services_env)


def _run_services(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            [str(SERVICES_SCRIPT), command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(
            f"scripts/services {command} did not finish within {timeout} s"
            f"{_indent(_text(exc.stderr))}"
        ) from exc
    if result.returncode != 0:
        raise RuntimeError(
            f"scripts/services {command} failed with exit code {result.returncode}"
            f"{_indent(result.stdout)}{_indent(result.stderr)}"
        )
    return result


def parse_export_lines(text: str) -> dict[str, str]:
    """Parse ``export KEY=value`` lines (shell-quoted) as printed by ``scripts/services env``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            values[key] = value
    return values


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _indent(text: str) -> str:
    text = text.strip()
    return "\n    " + text.replace("\n", "\n    ") if text else ""


@pytest.fixture(scope="session")
def real_services() -> dict[str, str]:
    """Engine, open registry and auth registry are up; their settings are in os.environ."""
    return start_real_services()


@pytest.fixture(scope="session")
def docker_client(real_services: dict[str, str]) -> Iterator[docker.DockerClient]:
    import docker

    # Generous read timeout: a RUN step may print nothing for minutes while the stream is open.
    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], timeout=600)
    try:
        yield client
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# build-step containers (runc)


def list_build_step_containers(match: str | None = None) -> list[str]:
    """Ids of the runc containers that run build RUN steps right now (``buildah-...``).

    With ``match``, only steps whose command line contains that text: other sessions may be
    building on the same engine at the same time.
    """
    out = subprocess.run(
        ["runc", "--root", RUNC_ROOT, "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    # runc prints "null" when there are no containers.
    entries: list[dict[str, Any]] = json.loads(out or "null") or []
    ids: list[str] = []
    for entry in entries:
        cid = str(entry.get("id", ""))
        if not cid.startswith("buildah-"):
            continue
        if match is not None and match not in _step_command(entry):
            continue
        ids.append(cid)
    return ids


def _step_command(entry: Mapping[str, Any]) -> str:
    bundle = entry.get("bundle")
    if not bundle:
        return ""
    try:
        config = json.loads((Path(bundle) / "config.json").read_text())
    except (OSError, ValueError):
        # The step may finish between "list" and this read.
        return ""
    return " ".join(config.get("process", {}).get("args", []))


def step_pid(step_id: str) -> int | None:
    """The pid runc reports for build step container ``step_id``, or None when runc knows none."""
    state = subprocess.run(
        ["runc", "--root", RUNC_ROOT, "state", step_id],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if state.returncode != 0:
        return None
    return json.loads(state.stdout).get("pid")


def build_step_working_container(step_id: str) -> str | None:
    """The id of the build's working container that the running RUN step ``step_id`` uses.

    Other sessions may build on the same engine, so "whatever external container exists" is not
    good enough to prove cleanup. The step's root is an overlay whose upperdir is the working
    container's layer; containers/storage's containers.json maps that layer to the container.
    """
    pid = step_pid(step_id)
    try:
        mountinfo = Path(f"/proc/{pid}/mountinfo").read_text()
    except OSError:
        return None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == "/" and " - overlay " in line:
            match = re.search(r"upperdir=([^,\s]+)/diff", line)
            if not match:
                continue
            layer_dir = Path(match.group(1))  # <graphroot>/overlay/<layer>
            containers_json = layer_dir.parent.parent / "overlay-containers" / "containers.json"
            try:
                containers = json.loads(containers_json.read_text())
            except (OSError, ValueError):
                return None
            for container in containers:
                if container.get("layer") == layer_dir.name:
                    return str(container["id"])
    return None


def kill_build_step_container(container_id: str, signal: str = "KILL") -> None:
    """Stop a RUN step. SIGTERM is not enough: the step's PID 1 (sh) ignores it."""
    subprocess.run(
        ["runc", "--root", RUNC_ROOT, "kill", container_id, signal],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )


def external_containers() -> list[dict[str, Any]]:
    """All containers podman knows, including buildah working containers."""
    for attempt in range(5):
        # podman fails the listing now and then when a container goes away while it reads
        # (exit 125, "no such container"): ask again.
        result = subprocess.run(
            ["podman", "ps", "-a", "--external", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode == 0:
            return json.loads(result.stdout or "[]") or []
        if attempt == 4:
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            )
        time.sleep(0.3)
    return []


# ---------------------------------------------------------------------------------------------
# sample content


def unique_name(prefix: str = "t") -> str:
    """A fresh lower-case name valid as an image repository, tag, git repo or k8s object."""
    clean = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-") or "t"
    return f"{clean}-{uuid.uuid4().hex[:10]}"


def sample_app_files(
    run_steps: int = 3,
    extra: Mapping[str, str | bytes] | None = None,
    *,
    marker: str | None = None,
) -> dict[str, str | bytes]:
    """A tiny web app: busybox image, ``run_steps`` RUN steps that echo, httpd serving /www.

    Each RUN step prints ``sample-app step <i> of <n> <marker>``. The marker is unique per call
    by default, so builds never hit the layer cache and always stream their RUN output; pass a
    fixed ``marker`` to test caching. ``extra`` files are added (and may replace the Dockerfile).
    The container listens on $PORT (default 8080) and serves index.html.
    """
    marker = marker if marker is not None else uuid.uuid4().hex[:12]
    lines = [f"FROM {BASE_IMAGE}"]
    for i in range(1, run_steps + 1):
        lines.append(f'RUN echo "sample-app step {i} of {run_steps} {marker}"')
    lines += [
        "COPY index.html /www/index.html",
        "ENV PORT=8080",
        "EXPOSE 8080",
        # exec: httpd becomes PID 1 and receives the engine's stop signal directly.
        'CMD ["sh", "-c", "exec httpd -f -v -p \\"${PORT:-8080}\\" -h /www"]',
    ]
    files: dict[str, str | bytes] = {
        "Dockerfile": "\n".join(lines) + "\n",
        "index.html": (
            "<!doctype html>\n<title>sample app</title>\n"
            f"<h1>Workflows sample app</h1>\n<p id=marker>{marker}</p>\n"
        ),
    }
    if extra:
        files.update(extra)
    return files


def tar_context(files: Mapping[str, str | bytes]) -> io.BytesIO:
    """An in-memory build context for ``api.build(fileobj=..., custom_context=True)``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


# ---------------------------------------------------------------------------------------------
# git over HTTP


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # A developer's ~/.gitconfig or credential helper must not leak into (or store) test creds.
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", GIT_ASKPASS="")
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


_GIT_IDENTITY = (
    "-c",
    "user.name=Workflows Tests",
    "-c",
    "user.email=tests@workflows.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "credential.helper=",
    "-c",
    "init.defaultBranch=main",
)


def run_git(*args: str, cwd: Path | str | None = None, home: Path | None = None) -> str:
    """Run git with a neutral config; raise with its output when it fails."""
    env = _git_env()
    if home is not None:
        env["HOME"] = str(home)
    result = subprocess.run(
        ["git", *_GIT_IDENTITY, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(args)} failed ({result.returncode}){_indent(result.stderr)}"
        )
    return result.stdout


def _write_files(tree: Path, files: Mapping[str, str | bytes | None]) -> None:
    for rel, content in files.items():
        path = tree / rel
        if not path.resolve().is_relative_to(tree.resolve()):
            raise ValueError(f"file path escapes the work tree: {rel}")
        if content is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@dataclass
class GitServer:
    """A running scripts/git_http_server.py with basic auth over a private root."""

    root: Path
    user: str
    password: str
    port: int = 0
    process: subprocess.Popen[str] | None = None
    log_path: Path | None = None
    _scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="git-work-")))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def repo_url(self, name: str) -> str:
        return f"{self.base_url}/{name}.git"

    def auth_repo_url(self, name: str) -> str:
        """repo_url with the credentials embedded (for git CLI use)."""
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}/{name}.git"

    def bare_path(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def start(self) -> None:
        self.log_path = self.root.parent / "git-http-server.log"
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(GIT_SERVER_SCRIPT),
                "--root",
                str(self.root),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--user",
                self.user,
            ],
            env={**os.environ, "GIT_HTTP_PASSWORD": self.password},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        log.close()
        assert self.process.stdout is not None
        # readline blocks; a timer turns a hung start into an EOF instead of a hung session.
        timer = threading.Timer(20, self.process.kill)
        timer.start()
        try:
            first = self.process.stdout.readline()
        finally:
            timer.cancel()
        match = re.fullmatch(r"listening on (\d+)\s*", first)
        if not match:
            self.stop()
            raise RuntimeError(
                f"git_http_server.py did not report its port (got {first!r}); "
                f"log {self.log_path}:{_indent(self.log_path.read_text())}"
            )
        self.port = int(match.group(1))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def create_repo(
        self,
        name: str,
        files: Mapping[str, str | bytes],
        branch: str = "main",
        message: str = "init",
    ) -> str:
        """Create ``<name>.git`` with one commit of ``files`` on ``branch``; return its sha."""
        with self._lock:
            bare = self.bare_path(name)
            if bare.exists():
                raise ValueError(f"repository {name!r} already exists")
            bare.parent.mkdir(parents=True, exist_ok=True)
            # HEAD of the bare repo names `branch`, so clones check it out by default.
            run_git("init", "-q", "--bare", "-b", branch, str(bare))
            work = Path(tempfile.mkdtemp(prefix="create-", dir=self._scratch))
            try:
                run_git("init", "-q", "-b", branch, str(work))
                _write_files(work, files)
                run_git("add", "-A", cwd=work)
                run_git("commit", "-q", "--allow-empty", "-m", message, cwd=work)
                # Pushed over HTTP on purpose: every fixture use exercises the server's push path.
                run_git(
                    "push", "-q", self.auth_repo_url(name), f"HEAD:refs/heads/{branch}", cwd=work
                )
                return run_git("rev-parse", "HEAD", cwd=work).strip()
            finally:
                shutil.rmtree(work, ignore_errors=True)

    def commit(
        self,
        name: str,
        files: Mapping[str, str | bytes | None],
        branch: str = "main",
        message: str = "update",
    ) -> str:
        """Add a commit on ``branch`` (created from the default branch if missing); return sha.

        A ``None`` content deletes that file.
        """
        with self._lock:
            if not self.bare_path(name).exists():
                raise ValueError(f"repository {name!r} does not exist")
            work = Path(tempfile.mkdtemp(prefix="commit-", dir=self._scratch))
            try:
                run_git("clone", "-q", self.auth_repo_url(name), str(work))
                remote_branches = run_git("branch", "-r", "--format=%(refname:short)", cwd=work)
                if f"origin/{branch}" in remote_branches.split():
                    run_git("checkout", "-q", "-B", branch, f"origin/{branch}", cwd=work)
                else:
                    run_git("checkout", "-q", "-b", branch, cwd=work)
                _write_files(work, files)
                run_git("add", "-A", cwd=work)
                run_git("commit", "-q", "--allow-empty", "-m", message, cwd=work)
                run_git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
                return run_git("rev-parse", "HEAD", cwd=work).strip()
            finally:
                shutil.rmtree(work, ignore_errors=True)

    def head(self, name: str, branch: str = "main") -> str:
        """The sha ``branch`` points at, read straight from the bare repository."""
        return run_git(
            "--git-dir", str(self.bare_path(name)), "rev-parse", f"refs/heads/{branch}"
        ).strip()


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    base = tmp_path_factory.mktemp("git-http")
    root = base / "repos"
    root.mkdir()
    server = GitServer(root=root, user=GIT_USER, password=GIT_PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()
