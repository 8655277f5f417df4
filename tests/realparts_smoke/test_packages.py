"""The install scripts name every Debian package whose programs the code runs (issue 9).

A machine that got a package some other way (an earlier session, a Recommends installed by
hand) hides a missing install step: the product's `deliver` run failed on a new machine because
podman only *recommends* catatonit. These tests read the lists in `scripts/services` and
`scripts/bootstrap`, collect the executables the code runs (argv literals in Python, the programs
the shell scripts call, podman's own helpers), find the package that owns each on this machine
with `dpkg -S`, and fail when that package is not listed. Essential packages (coreutils, tar …)
are on every Debian machine and need no listing.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ["atmosly", "workflows", "executions", "approvals", "integrations", "scripts", "tests"]

# Calls that take an argv list first (subprocess and our own spawn helpers).
ARGV_CALLS = {"run", "Popen", "check_output", "check_call", "call", "_spawn", "spawn"}

# Programs the bash scripts (scripts/services, run, test, bootstrap, check-frontend) run. Shell
# has no syntax tree to walk here, so they are named; the test checks each is a word in a script.
SHELL_PROGRAMS = [
    "podman",
    "docker-registry",
    "htpasswd",
    "curl",
    "busybox",
    "chroot",
    "tar",
    "flock",
    "setsid",
    "apt-get",
    "dpkg-query",
    "git",
    "python3",
    "npm",
    "sha256sum",
    "dpkg-deb",
    "mount",
    "runuser",
    "psql",
    "redis-server",
    "redis-cli",
]
# Programs that programs we run exec in turn: git runs ssh for ssh:// repositories (the Source
# stage sets GIT_SSH_COMMAND=ssh …).
INDIRECT_PROGRAMS = ["ssh"]

# Helpers podman runs by itself, never named in our code. The pause/init binary (catatonit) is
# looked up in podman's helper_binaries_dir; the CNI plugins make the networks of API containers
# and pods (the local deploy target's `kube play`).
PODMAN_HELPERS = [
    "/usr/libexec/podman/catatonit",
    "/usr/lib/cni/bridge",
    "/usr/lib/cni/portmap",
    "/usr/lib/cni/host-local",
    "/usr/lib/cni/loopback",
    # The kernel runs arm64 programs (builds and containers for linux/arm64) through this.
    "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
]

# The PostgreSQL server's programs scripts/services runs for the scale mode's test cluster: Debian
# keeps them off PATH, in a folder per major version.
POSTGRES_PROGRAMS = sorted(
    str(path)
    for name in ("initdb", "pg_ctl", "postgres")
    for path in Path("/usr/lib/postgresql").glob(f"*/bin/{name}")
) or ["/usr/lib/postgresql/15/bin/pg_ctl"]

# Executables that come from the virtualenv (PyPI), not Debian.
VENV_PROGRAMS = {"moto_server", "trivy", "sonar-scanner", "daphne"}
# What every machine of this kind has before any install (its CPython and Node.js are not
# Debian's): /work/.library/env/machines/python.md.
MACHINE_PROGRAMS = {"python3", "npm"}


def listed_packages() -> set[str]:
    """The union of scripts/services' APT_PACKAGES and TEST_APT_PACKAGES and scripts/bootstrap's
    package arrays."""
    services = (ROOT / "scripts" / "services").read_text()
    names: set[str] = set()
    for array in ("APT_PACKAGES", "TEST_APT_PACKAGES"):
        block = re.search(rf"^{array}=\((.*?)^\)", services, re.S | re.M)
        assert block, f"scripts/services has no {array}=( … ) block"
        names |= {line.split("#", 1)[0].strip() for line in block.group(1).splitlines()} - {""}
    bootstrap = (ROOT / "scripts" / "bootstrap").read_text()
    for match in re.finditer(r"packages(?:\+)?=\(([^)]*)\)", bootstrap):
        names |= set(match.group(1).split())
    return names


def python_executables() -> set[str]:
    """argv[0] literals of subprocess-like calls and shutil.which() literals in our Python."""
    found: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                args = node.args
                if name == "which" and args and isinstance(args[0], ast.Constant):
                    found.add(str(args[0].value))
                elif name == "sh" and len(args) > 1 and isinstance(args[1], ast.Constant):
                    found.add(str(args[1].value))
                elif name in ARGV_CALLS and args and isinstance(args[0], ast.List | ast.Tuple):
                    first = args[0].elts[0] if args[0].elts else None
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        found.add(first.value)
    return {exe for exe in found if exe and "/" not in exe and exe not in VENV_PROGRAMS}


@functools.cache
def owner(path: str) -> str | None:
    """The Debian package that installed `path` (following /usr merge aliases), or None."""
    candidates = [path, str(Path(path).resolve())]
    candidates += [
        c.replace("/usr/bin/", "/bin/").replace("/usr/sbin/", "/sbin/") for c in candidates
    ]
    for candidate in candidates:
        done = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


@functools.cache
def essential(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Essential} ${Priority}", package], capture_output=True, text=True
    )
    return done.stdout.startswith("yes") or done.stdout.endswith("required")


def test_the_list_parses_and_names_the_recommends_podman_needs():
    packages = listed_packages()
    # The packages podman only recommends, or leaves to alternatives, that the product needs.
    assert {"catatonit", "containernetworking-plugins", "buildah", "runc", "conmon"} <= packages
    # The scale mode's test backends (scripts/test's second pass).
    assert {"postgresql-15", "redis-server"} <= packages


def test_the_python_scan_finds_what_the_code_runs():
    # A scan that found nothing would make the coverage test below pass vacuously.
    assert {"git", "podman", "runc", "chromium", "redis-server"} <= python_executables()


def test_every_shell_program_is_really_called_by_a_script():
    text = "\n".join(p.read_text() for p in (ROOT / "scripts").iterdir() if p.is_file())
    for program in SHELL_PROGRAMS:
        assert re.search(rf"(^|[\s(\"'`]){re.escape(program)}\b", text, re.M), program


@pytest.mark.parametrize(
    "executable",
    sorted(
        python_executables()
        | set(SHELL_PROGRAMS)
        | set(INDIRECT_PROGRAMS)
        | set(PODMAN_HELPERS)
        | set(POSTGRES_PROGRAMS)
    ),
)
def test_every_executable_is_covered_by_a_listed_package(executable):
    if executable in MACHINE_PROGRAMS:
        assert shutil.which(executable), f"{executable} should come with the machine"
        return
    path = executable if executable.startswith("/") else shutil.which(executable)
    assert path and Path(path).exists(), (
        f"{executable} is run by the code but is not installed here: add its Debian package "
        "to APT_PACKAGES in scripts/services (or scripts/bootstrap)"
    )
    package = owner(path)
    assert package, f"{path} belongs to no Debian package: say where it comes from"
    assert package in listed_packages() or essential(package), (
        f"{executable} ({path}) comes from the Debian package {package!r}, which no install "
        "script lists: a new machine would not have it"
    )


@pytest.mark.engine
def test_podman_reports_helpers_from_listed_packages(real_services):
    """The runtime and monitor podman really uses, as it reports them."""
    done = subprocess.run(
        ["podman", "--remote", "--url", real_services["DOCKER_HOST"], "info", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    host = json.loads(done.stdout)["host"]
    for path in (host["conmon"]["path"], host["ociRuntime"]["path"]):
        assert owner(path) in listed_packages(), path
