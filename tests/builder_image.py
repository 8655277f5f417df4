"""The Kubernetes builder's image for tests, made from Debian packages: no public registry is
reachable here, so quay.io/buildah/stable cannot be pulled.

`localhost/workflows-buildah:bookworm` is debootstrap's minbase bookworm (from the mirror in the
machine's apt sources) with Debian's `buildah`, `git` and `ca-certificates`, imported with
`podman import`, and laid out as the upstream Buildah image is for rootless builds: a `build`
user (uid and gid 1000, home /home/build) with subordinate ids 1-999 and 1001-65535 for the
user namespace Buildah makes, newuidmap/newgidmap with file capabilities (cap_setuid,
cap_setgid) instead of setuid root: setuid-root shadow 4.13 drops the capabilities the kernel
asks of whoever maps uid 0, and writing the map fails (EPERM) in a container without
CAP_SYS_ADMIN. It serves as
both the build image (KUBERNETES_BUILDER_IMAGE) and the clone image
(KUBERNETES_BUILDER_GIT_IMAGE). Debian has no BuildKit binary (only its Go sources), so there is
no BuildKit image.

Made once per engine, when missing or when this recipe changed (the image carries the recipe's
hash as a label), under a file lock in .run/ so parallel sessions make it once. 3 min 32 s
measured on a loaded 2-core machine (debootstrap's downloads and unpacking dominate).

    .venv/bin/python -m tests.builder_image      # make it now (prints the time)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/workflows-buildah:bookworm"
# netavark: golang-github-containers-common needs a container-network-stack, a virtual package
# debootstrap does not resolve; libcap2-bin for setcap.
PACKAGES = ["buildah", "git", "ca-certificates", "netavark", "libcap2-bin"]
# Run in the debootstrapped root (chroot) before it is imported.
SETUP = """set -eu
[ -z "$(dpkg --audit)" ] || { dpkg --audit; exit 1; }  # debootstrap exits 0 on a broken configure
groupadd --gid 1000 build
useradd --uid 1000 --gid 1000 --create-home --home-dir /home/build --shell /bin/sh build
printf 'build:1:999\\nbuild:1001:64535\\n' > /etc/subuid
cp /etc/subuid /etc/subgid
mkdir -p /home/build/.local/share/containers && chown -R build:build /home/build
chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap
setcap cap_setuid=ep /usr/bin/newuidmap && setcap cap_setgid=ep /usr/bin/newgidmap
chmod 1777 /tmp
apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /usr/share/doc/*
"""
RECIPE = hashlib.sha256(f"{PACKAGES}{SETUP}".encode()).hexdigest()[:12]
LOCK = ROOT / ".run" / "builder-image.lock"


def podman(docker_host: str, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "--remote", "--url", docker_host, *args],
        capture_output=True,
        text=True,
        check=check,
    )


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (deb822 or one-line sources)."""
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        text = path.read_text() if path.is_file() else ""
        for url in re.findall(r"(?:URIs:|^deb)\s+(\S+/debian)\s*$", text, re.M):
            return url
    raise RuntimeError("no Debian mirror in the apt sources")


def current(docker_host: str) -> bool:
    found = podman(docker_host, "image", "inspect", "--format", "{{.Labels.recipe}}", IMAGE)
    return found.returncode == 0 and found.stdout.strip() == RECIPE


def ensure_builder_image(docker_host: str) -> str:
    """The image's name, made first when missing or stale (see the module docstring).

    Raises subprocess.CalledProcessError when debootstrap or the import fails."""
    if current(docker_host):
        return IMAGE
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be making it: wait, then reuse
        if not current(docker_host):
            make(docker_host)
    return IMAGE


def make(docker_host: str) -> float:
    """debootstrap, set up, import; returns the seconds it took."""
    started = time.monotonic()
    if not shutil.which("debootstrap"):  # scripts/services installs it with the test packages
        raise RuntimeError("debootstrap is missing: run scripts/services start")
    work = Path(tempfile.mkdtemp(prefix="workflows-buildah-", dir=ROOT / ".run"))
    try:
        rootfs = work / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                "bookworm",
                str(rootfs),
                debian_mirror(),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", SETUP], check=True)
        tar = work / "rootfs.tar"
        # --xattrs-include: keeps security.capability, the file capabilities set above.
        xattrs = ["--xattrs", "--xattrs-include=*"]
        subprocess.run(
            ["tar", "-C", str(rootfs), "--numeric-owner", *xattrs, "-cf", str(tar), "."],
            check=True,
        )
        podman(docker_host, "rmi", IMAGE)  # a stale recipe's image, unless a container uses it
        podman(
            docker_host,
            "import",
            "--change",
            f"LABEL recipe={RECIPE}",
            "--change",
            "USER build",
            "--change",
            "WORKDIR /home/build",
            "--change",
            "ENV BUILDAH_ISOLATION=chroot",
            "--change",
            'CMD ["/bin/sh"]',
            str(tar),
            IMAGE,
            check=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return time.monotonic() - started


if __name__ == "__main__":
    host = os.environ.get("DOCKER_HOST") or f"unix://{ROOT / '.run' / 'podman.sock'}"
    seconds = make(host)
    print(f"made {IMAGE} in {seconds:.0f} s")
