"""Where user code runs: the network of Dockerfile RUN steps and script containers, and how
secret build-time variables reach a build (build secrets, never build args).

The model (README, "Security model"): every RUN step and script runs in its own network
namespace on the engine's bridge (podman: 10.88.0.0/16 behind NAT), like a job on GitLab's
Docker executor. Its 127.0.0.1 is its own, so the control plane's loopback services (web API,
git server, registries, a local database) and the engine's socket are out of reach, while
outbound traffic (package downloads) still works. `SANDBOX_NETWORK=none` takes the network
away altogether (loopback only).

Measured on podman 4.3 (30 Nov 2026): its build endpoint, compat and libpod alike, runs RUN
steps in the HOST's network namespace unless the request carries `nsoptions`, whatever
containers.conf says; the `networkmode` argument only picks buildah's network policy
("NetworkDisabled" leaves loopback only). Build secrets travel in the context tar, named by the
`secrets` query parameter (`id=NAME,src=<file in the context>`); podman moves each file out of
the context before the build starts, so no COPY can take it into a layer, and mounts it at
/run/secrets/NAME for the steps that ask for it.
"""

from __future__ import annotations

import io
import json
import secrets as random
import tarfile
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from docker.api.build import process_dockerfile
from docker.utils import build as build_utils

from executions.runners.base import StageError

BRIDGE, NONE = "bridge", "none"
# buildah's NamespaceOption: a network namespace of its own, not the host's.
PRIVATE_NETWORK = json.dumps([{"Name": "network", "Host": False, "Path": ""}])


def network() -> str:
    """The sandbox network from settings: "bridge" (default) or "none"."""
    value = settings.SANDBOX_NETWORK
    if value not in (BRIDGE, NONE):
        raise StageError(f"SANDBOX_NETWORK must be 'bridge' or 'none', not '{value}'", system=True)
    return value


def build_network(podman: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """(docker SDK `api.build` arguments, extra query parameters the SDK has no argument for)
    that keep a build's RUN steps off the host's network."""
    mode = network()
    if not podman:  # Docker Engine's classic builder already puts RUN steps on its bridge
        return ({"network_mode": "none"} if mode == NONE else {}), {}
    extra = {"nsoptions": PRIVATE_NETWORK}
    return ({"network_mode": "NetworkDisabled"} if mode == NONE else {}), extra


def script_network() -> str:
    """The `network_mode` of a script container."""
    return network()


def split_build_variables(
    build: dict[str, str], secret_keys: set[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(build args, build secrets): a secret variable never becomes a build arg, whose value
    every pusher of the image could read in its history (`|1 NAME=value /bin/sh -c ...`)."""
    args = {k: v for k, v in build.items() if k not in secret_keys}
    secret = {k: v for k, v in build.items() if k in secret_keys}
    return args, secret


def secret_context(
    context_dir: Path, dockerfile: Path, build_secrets: dict[str, str]
) -> tuple[IO[bytes], str | None, str]:
    """The build context as a tar (as the docker SDK makes it, .dockerignore applied) with one
    file per build secret added under a random name; returns (tar file, Dockerfile name in the
    context, the `secrets` query parameter). The checkout on disk never holds the values."""
    exclude = None
    ignore = context_dir / ".dockerignore"
    if ignore.is_file():
        lines = [line.strip() for line in ignore.read_text(errors="replace").splitlines()]
        exclude = [line for line in lines if line and not line.startswith("#")]
    name_and_text = process_dockerfile(str(dockerfile), str(context_dir))
    # A private temporary file (mode 600), removed when closed.
    # Without a `fileobj`, tar() makes (and returns) a NamedTemporaryFile.
    context = cast(
        IO[bytes], build_utils.tar(context_dir, exclude=exclude, dockerfile=name_and_text)
    )
    prefix = f".workflows-secret-{random.token_hex(8)}-"
    specs = []
    with tarfile.open(fileobj=context, mode="a") as tar:
        for key, value in build_secrets.items():
            data = value.encode()
            info = tarfile.TarInfo(prefix + key)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, fileobj=io.BytesIO(data))
            specs.append(f"id={key},src={prefix}{key}")
    context.seek(0)
    return context, name_and_text[0], json.dumps(specs)
