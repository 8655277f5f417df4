"""The image engine as the runners see it: Docker Engine, or podman's Docker-compatible API.

Both speak the Docker API through the docker SDK; the few places where podman behaves
differently (build termination, distribution inspect) ask `is_podman()`.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import docker
import requests
from django.conf import settings

from executions.runners.base import StageError

# Plain API calls (ping, inspect, tag, create) answer in well under this; builds and log
# streams are long and silent at times, so they pass timeout=None per call instead.
API_TIMEOUT_SECONDS = 120
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def one_line(error: object, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# DOCKER_HOST → the API version the SDK negotiated with it. It asks GET /version, which podman
# takes about 0.3 s to answer: once per worker process, not on every stage.
_api_versions: dict[str, str] = {}


def connect(timeout: int = API_TIMEOUT_SECONDS) -> docker.DockerClient:
    """A client for settings.DOCKER_HOST (or the SDK's defaults when empty), checked with a
    ping, so an engine that is down ends the stage Error with one clear line."""
    host = settings.DOCKER_HOST
    version = _api_versions.get(host)  # None: negotiate
    try:
        if host:
            client = docker.DockerClient(base_url=host, timeout=timeout, version=version)
        else:
            client = docker.from_env(timeout=timeout, version=version)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        where = host or "the default socket"
        raise StageError(
            f"image engine unreachable at {where}: {one_line(exc)}", system=True, retryable=True
        ) from exc
    _api_versions[host] = client.api.api_version
    return client


def is_podman(client: docker.DockerClient) -> bool:
    """podman answers GET /_ping with a Libpod-API-Version header, Docker Engine does not
    (cheaper than GET /version, see `connect`)."""
    ping = client.api.get(client.api._url("/_ping", versioned_api=False), timeout=10)
    return "Libpod-API-Version" in ping.headers


def is_local_socket(client: docker.DockerClient) -> bool:
    """The engine listens on a unix socket of this machine, so its build steps are visible
    to the local runc."""
    return client.api.base_url == "http+docker://localhost"


def local_tags_of(output: dict[str, Any]) -> list[str]:
    """The local tags a Build stage's output holds: one, or one per platform (multi-arch)."""
    return output.get("local_tags") or ([output["local_tag"]] if output.get("local_tag") else [])


def remove_local_image(tag: str) -> None:
    """Best effort, when a run ends: the build's local tag served the run's scripts and push;
    kept, one image per run would pile up. Re-runs rebuild from the engine's layer cache."""
    with contextlib.suppress(Exception):
        connect(timeout=10).api.remove_image(tag, noprune=True)


class StreamCloser:
    """Remembers the HTTP responses of one client so another thread can cut a stream.

    Closing a response does not wake a thread blocked reading it; shutting the socket down
    does, and makes the SDK's stream generator end with an error at once.
    """

    def __init__(self, client: docker.DockerClient):
        self.client = client
        self.responses: list[requests.Response] = []
        client.api.hooks["response"].append(self._remember)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.responses.append(response)

    def close(self) -> None:
        for response in self.responses:
            try:
                raw = self.client.api._get_raw_response_socket(response)
                getattr(raw, "_sock", raw).shutdown(socket.SHUT_RDWR)
            except Exception:  # already closed, or not a streamed response
                pass


def resolve_digest(ref: str, connection: Any = None) -> str:
    """The digest the registry serves for image `ref` now, logging in with `connection`
    (a RegistryConnection) when it is for the image's registry."""
    from integrations.podman.distribution import manifest_digest, split_reference
    from integrations.registries import RegistryError, get_provider

    host = split_reference(ref)[0]
    try:
        auth = get_provider(connection.provider).login(connection) if connection else None
    except RegistryError as exc:
        raise StageError(f"registry login failed: {one_line(exc)}") from exc
    if auth is not None and auth.host != host:
        auth = None  # never hand one registry's credentials to another
    client = connect()
    try:
        if not is_podman(client):
            config = auth.auth_config() if auth else None
            return client.api.inspect_distribution(ref, auth_config=config)["Descriptor"]["digest"]
        insecure = bool(connection and connection.insecure) or host.split(":")[0] in LOCAL_HOSTS
        digest = manifest_digest(ref, auth, insecure)
    except docker.errors.NotFound:
        digest = None
    except (docker.errors.APIError, RegistryError) as exc:
        explanation = getattr(exc, "explanation", None) or exc
        raise StageError(f"registry refused to resolve {ref}: {one_line(explanation)}") from exc
    except requests.RequestException as exc:
        raise StageError(
            f"cannot reach registry {host}: {one_line(exc)}", system=True, retryable=True
        ) from exc
    if not digest:
        raise StageError(f"image {ref} not found in its registry")
    return digest


def registry_architectures(ref: str, connection: Any = None) -> list[str] | None:
    """The architectures image `ref` is built for, read from its registry (manifest list or
    config blob), logging in with `connection` when it is for the image's registry. None when
    the registry has no such image. Raises RegistryError or requests.RequestException."""
    from integrations.podman.distribution import image_architectures, split_reference
    from integrations.registries import get_provider

    host = split_reference(ref)[0]
    auth = get_provider(connection.provider).login(connection) if connection else None
    if auth is not None and auth.host != host:
        auth = None  # never hand one registry's credentials to another
    insecure = bool(connection and connection.insecure) or host.split(":")[0] in LOCAL_HOSTS
    return image_architectures(ref, auth, insecure)
