"""Build cache: a cold build against a warm rebuild after a one-line source change (issue 17).

A realistic Dockerfile: a Python app on a Debian base that installs a dozen wheels from a local
wheelhouse (copied into the context: builds have no way to the host's loopback), byte-compiles
them, then copies the app. The warm rebuild changes one line of the app, so only the last COPY
and RUN should run again. Measured two ways in the same run, each cold then warm, alternated:

- through Workflows: a CI workflow with caching on, triggered through the API (Django test
  client) and run by a real `manage.py qcluster` worker; the Build stage's own duration;
- the same workflow once more after its layers were removed from the engine (its kept build
  and the intermediate images with it), another one-line change: only the registry cache
  repository (`<repository>-cache`) has the layers;
- the same app in a workflow with caching off (`--no-cache`, no cache repository): what a build
  costs without any cache, printed against the warm build with it;
- by hand: `podman build --layers` on the same engine socket (the baseline).

A unique first step makes every cold build really cold. Prints the medians, the warm speed-ups
(cold / warm; goal >= 5x, Atmosly claims about 3.3x) and how the product compares with podman;
`--trace` prints the builds' stage logs with their times.

The base image `localhost/bench-python:bookworm` is made once per engine with debootstrap
(minbase + python3 + python3-pip, from the mirror in the machine's apt sources) and kept; the
wheels are downloaded once with pip into .run/bench-cache/. Loopback only.

    .venv/bin/python bench/build_cache.py [--rounds 3] [--trace]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_overhead import (
    RUN_DIR,
    GitServer,
    Worker,
    _git,
    fresh_environment,
    make_workflow,
    setup_django,
    stage_seconds,
    workflows_run,
)

CACHE_DIR = RUN_DIR.parent / "bench-cache"
BASE = "localhost/bench-python:bookworm"
WHEELS = [
    "requests",
    "idna",
    "urllib3",
    "certifi",
    "charset-normalizer",
    "six",
    "attrs",
    "packaging",
    "click",
    "jinja2",
    "markupsafe",
    "pyyaml",
]


def podman(env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "--remote", "--url", env["DOCKER_HOST"], *args],
        capture_output=True,
        text=True,
        **kw,
    )


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (deb822 or one-line sources)."""
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        text = path.read_text() if path.is_file() else ""
        for url in re.findall(r"(?:URIs:|^deb)\s+(\S+/debian)\s*$", text, re.M):
            return url
    raise SystemExit("no Debian mirror in the apt sources")


def ensure_base(env: dict[str, str]) -> None:
    if podman(env, "image", "exists", BASE).returncode == 0:
        return
    if not shutil.which("debootstrap"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"],
            check=True,
            capture_output=True,
        )
    rootfs = CACHE_DIR / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    started = time.monotonic()
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-pip",
            "bookworm",
            str(rootfs),
            debian_mirror(),
        ],
        check=True,
        capture_output=True,
    )
    tar = CACHE_DIR / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tar), "."], check=True)
    podman(env, "import", "--change", 'CMD ["/bin/sh"]', str(tar), BASE, check=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    tar.unlink()
    print(f"made {BASE} with debootstrap in {time.monotonic() - started:.0f} s (once per engine)")


def wheelhouse() -> dict[str, bytes]:
    """The dozen wheels (and their dependencies) for CPython 3.11 on x86_64, downloaded once."""
    folder = CACHE_DIR / "wheels"
    if not any(folder.glob("*.whl")):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "-d",
                str(folder),
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--platform",
                "manylinux2014_x86_64",
                *WHEELS,
            ],
            check=True,
        )
    return {f"wheels/{p.name}": p.read_bytes() for p in sorted(folder.glob("*.whl"))}


def app_files(marker: str, line: str) -> dict:
    return {
        "Dockerfile": (
            f"FROM {BASE}\n"
            f"RUN echo 'bench {marker}' > /bench-marker\n"
            "COPY requirements.txt /app/requirements.txt\n"
            "COPY wheels/ /wheels/\n"
            "RUN pip install --break-system-packages --no-index --find-links /wheels "
            "-r /app/requirements.txt\n"
            "RUN python3 -m compileall -q /usr/local/lib/python3.11\n"
            "COPY app/ /app/\n"
            "RUN python3 -m compileall -q /app\n"
        ),
        "requirements.txt": "\n".join(WHEELS) + "\n",
        "app/main.py": f"import requests, yaml, jinja2, click\n\nGREETING = {line!r}\n",
        **wheelhouse(),
    }


def write_tree(folder: Path, files: dict) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def by_hand(env: dict[str, str], marker: str) -> tuple[float, float]:
    """podman build --layers, cold then warm after the same one-line change; seconds each."""
    folder = CACHE_DIR / f"hand-{marker}"
    write_tree(folder, app_files(marker, "hello"))
    times = []
    tag = f"localhost/bench-cache-hand:{marker}"
    for line in ("hello", "hello, again"):
        write_tree(
            folder,
            {"app/main.py": f"import requests, yaml, jinja2, click\n\nGREETING = {line!r}\n"},
        )
        started = time.monotonic()
        podman(env, "build", "--layers", "-t", tag, str(folder), check=True)
        times.append(time.monotonic() - started)
    podman(env, "rmi", tag)
    shutil.rmtree(folder, ignore_errors=True)
    return times[0], times[1]


def one_line_change(git: GitServer, workflow, line: str) -> None:
    """Pushes a commit that changes one line of the app."""
    work = CACHE_DIR / f"work-{uuid.uuid4().hex[:8]}"
    _git("clone", "-q", git.url(workflow.service.name, with_credentials=True), str(work))
    (work / "app" / "main.py").write_text(
        f"import requests, yaml, jinja2, click\n\nGREETING = {line!r}\n"
    )
    _git("commit", "-qam", "one line", cwd=work)
    _git("push", "-q", "origin", "main", cwd=work)
    shutil.rmtree(work, ignore_errors=True)


def trace(execution) -> None:
    """The Build stage's log lines with the seconds since the stage started (chunk times)."""
    build = execution.stages.get(kind="build")
    for chunk in build.log_chunks.order_by("seq"):
        offset = (chunk.created_at - build.started_at).total_seconds()
        for line in chunk.text.splitlines():
            print(f"    {offset:6.2f}  {line[:110]}")


def through_workflows(
    env: dict[str, str], git: GitServer, marker: str, show: bool
) -> tuple[float, float, float, float]:
    """The same through a workflow with caching on: the Build stage of run 1 (cold), run 2
    (warm, the engine's layers) and run 3 (warm again, after the workflow's layers were removed
    from the engine: only the registry's cache repository has them); then the same app in a
    workflow with caching off (no cache read or written: what a build costs without it)."""
    from integrations.podman.layercache import cache_tag

    files = app_files(marker, "hello")
    workflow, client = make_workflow(git, files, cache_enabled=True)
    _, cold = workflows_run(client, workflow)
    one_line_change(git, workflow, "hello, again")
    _, warm = workflows_run(client, workflow)
    podman(env, "rmi", cache_tag(workflow), check=True)  # the engine store empty of it
    one_line_change(git, workflow, "hello, third time")
    _, remote = workflows_run(client, workflow)
    uncached, client = make_workflow(git, app_files(f"{marker}-off", "hello"), cache_enabled=False)
    _, off = workflows_run(client, uncached)
    if show:
        for name, execution in (
            ("cold", cold),
            ("warm", warm),
            ("warm from the registry", remote),
            ("caching off", off),
        ):
            print(f"  {name} Build stage log (seconds since the stage started):")
            trace(execution)
    podman(env, "rmi", cache_tag(workflow))
    seconds = [stage_seconds(e)["Build"] for e in (cold, warm, remote, off)]
    return seconds[0], seconds[1], seconds[2], seconds[3]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trace", action="store_true", help="print the builds' stage logs")
    args = parser.parse_args()
    env = fresh_environment("cache")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    ensure_base(env)
    setup_django()
    git = GitServer()
    Worker(env, "cache")
    hand: list[tuple[float, float]] = []
    ours: list[tuple[float, float, float, float]] = []
    for i in range(max(1, args.rounds)):
        for side in ("hand", "workflows") if i % 2 == 0 else ("workflows", "hand"):
            for attempt in (1, 2):
                marker = uuid.uuid4().hex[:10]
                try:
                    if side == "hand":
                        hand.append(by_hand(env, marker))
                    else:
                        ours.append(through_workflows(env, git, marker, args.trace and i == 0))
                    break
                except (RuntimeError, subprocess.CalledProcessError) as exc:
                    # Other jobs share this engine; a step killed under a build is theirs.
                    detail = getattr(exc, "stderr", "") or exc
                    print(f"  {side} failed (attempt {attempt}): {str(detail).strip()[-300:]}")
                    if attempt == 2:
                        raise
        print(
            f"  round {i + 1}: by hand cold {hand[-1][0]:.1f} s warm {hand[-1][1]:.1f} s; "
            f"workflows Build cold {ours[-1][0]:.1f} s warm {ours[-1][1]:.1f} s, "
            f"warm from the registry {ours[-1][2]:.1f} s; caching off {ours[-1][3]:.1f} s",
            flush=True,
        )
    # (name, what the first figure is, (first, warm) per round)
    rows = (
        ("podman build --layers by hand", "cold", [(c, w) for c, w in hand]),
        ("workflows Build stage", "cold", [(c, w) for c, w, _, _ in ours]),
        ("workflows, registry cache only", "cold", [(c, r) for c, _, r, _ in ours]),
        ("workflows, caching off vs warm", "off ", [(o, w) for _, w, _, o in ours]),
    )
    for name, first, pairs in rows:
        before = statistics.median(p[0] for p in pairs)
        warm = statistics.median(p[1] for p in pairs)
        speedup = statistics.median(p[0] / p[1] for p in pairs)
        print(f"{name:32} {first} {before:6.2f} s  warm {warm:5.2f} s  speed-up {speedup:4.1f}x")
    for name, _, pairs in rows[1:3]:
        speedup = statistics.median(p[0] / p[1] for p in pairs)
        print(
            f"{name}: warm speed-up (median of rounds) {speedup:.1f}x, goal >= 5x "
            f"{'met' if speedup >= 5 else 'NOT met'} (Atmosly claims about 3.3x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
