"""The image engine client: Docker Engine, or podman's Docker-compatible API.

Both speak the Docker API through the docker SDK; the few places where podman behaves
differently (build termination, distribution inspect) ask `is_podman()`.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import socket
import struct
from collections.abc import Iterable, Iterator
from typing import Any, Literal, overload

import docker
import requests
from django.conf import settings
from docker.types.daemon import CancellableStream

from integrations.errors import ProviderError
from integrations.podman.distribution import image_architectures, manifest_digest, split_reference
from integrations.registries import RegistryError, get_provider

# Plain API calls (ping, inspect, tag, create) answer in well under this; builds and log
# streams are long and silent at times, so they pass timeout=None per call instead.
API_TIMEOUT_SECONDS = 120
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class EngineError(ProviderError):
    """The image engine (or a registry it asked) refused or could not be reached."""


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
        raise EngineError(
            f"image engine unreachable at {where}: {one_line(exc)}", system=True, retryable=True
        ) from exc
    _api_versions[host] = client.api.api_version
    return client


def ping(api: docker.APIClient) -> requests.Response:
    """The engine's answer to GET /_ping (unversioned). podman sends a Libpod-API-Version
    header with it, Docker Engine does not: cheaper to tell them apart than GET /version."""
    # docker-py's private URL builder (not in its stubs): /_ping is unversioned.
    url = api._url("/_ping", versioned_api=False)  # type: ignore[attr-defined]
    return api.get(url, timeout=10)


def is_podman(client: docker.DockerClient) -> bool:
    """podman, not Docker Engine (see `ping`)."""
    return "Libpod-API-Version" in ping(client.api).headers


def is_local_socket(client: docker.DockerClient) -> bool:
    """The engine listens on a unix socket of this machine, so its build steps are visible
    to the local runc."""
    return client.api.base_url == "http+docker://localhost"


# The engine's multiplexed log format: an 8-byte header (stream type, 3 zero bytes, big-endian
# length) before each frame; https://docs.docker.com/engine/api/v1.43/#tag/Container/operation/ContainerAttach
FRAME_HEADER = struct.Struct(">BxxxL")
STREAM_NAMES = {0: "stdin", 1: "stdout", 2: "stderr"}


def _frames(read: Any) -> Iterator[tuple[str, bytes]]:
    while True:
        header = read(FRAME_HEADER.size)
        if len(header) < FRAME_HEADER.size:
            return
        kind, length = FRAME_HEADER.unpack(header)
        data = read(length) if length else b""
        if length and not data:
            return
        yield STREAM_NAMES.get(kind, "stdout"), data


@overload
def container_output(
    client: Any, cid: str, follow: Literal[True], tail: int | str = ...
) -> CancellableStream: ...
@overload
def container_output(
    client: Any, cid: str, follow: Literal[False], tail: int | str = ...
) -> list[tuple[str, bytes]]: ...
def container_output(
    client: Any, cid: str, follow: bool, tail: int | str = "all"
) -> list[tuple[str, bytes]] | CancellableStream:
    """A container's output (not a tty) as (stream name, bytes) frames, stdout and stderr kept
    apart so each is decoded on its own. The docker SDK's `logs()` drops the stream type.
    Following, it returns a CancellableStream that another thread may `close()`; otherwise a
    list of what the container printed so far (its last `tail` lines). `client` is a
    DockerClient or a low-level APIClient."""
    api = getattr(client, "api", client)
    params = {"stdout": 1, "stderr": 1, "follow": int(follow), "timestamps": 0, "tail": tail}
    url = api._url("/containers/{0}/logs", cid)
    response = api._get(url, params=params, stream=follow)
    api._raise_for_status(response)
    if not follow:
        buffer = memoryview(response.content)
        offset = 0

        def read(size: int) -> bytes:
            nonlocal offset
            offset += size
            return bytes(buffer[offset - size : offset])

        return list(_frames(read))
    sock = api._get_raw_response_socket(response)
    api._disable_socket_timeout(sock)
    return CancellableStream(_frames(response.raw.read), response)


def decode_output(frames: Iterable[tuple[str, bytes]]) -> str:
    """Frames of `container_output` as text, each stream through its own UTF-8 decoder."""
    decoders: dict[str, codecs.IncrementalDecoder] = {}
    parts = []
    for name, data in frames:
        if name not in decoders:
            decoders[name] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        parts.append(decoders[name].decode(data))
    parts += [decoder.decode(b"", final=True) for decoder in decoders.values()]
    return "".join(parts)


def json_messages(blocks: Iterable[bytes]) -> Iterator[dict]:
    """The JSON objects of an engine progress stream (build, push), from its raw bytes.

    The docker SDK's `decode=True` decodes each HTTP chunk on its own, so a character split
    between two chunks becomes two U+FFFD; here one incremental decoder reads the whole stream.
    Objects may be split across chunks or share one; whitespace between them is skipped."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parser = json.JSONDecoder()
    buffer = ""
    for block in blocks:
        text = decoder.decode(block)
        buffer += text
        if "}" not in text:  # no object can have ended in this block
            continue
        position = 0
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n":
                position += 1
            if position >= len(buffer):
                break
            try:
                message, position = parser.raw_decode(buffer, position)
            except json.JSONDecodeError:
                break  # incomplete: wait for more
            if isinstance(message, dict):
                yield message
        buffer = buffer[position:]
    if buffer.strip():
        yield {"error": f"the engine sent an unreadable message: {one_line(buffer, 200)}"}


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
                # docker-py's own way to the socket under a streamed response (private).
                raw = self.client.api._get_raw_response_socket(response)  # type: ignore[attr-defined]
                getattr(raw, "_sock", raw).shutdown(socket.SHUT_RDWR)
            except Exception:  # already closed, or not a streamed response
                pass


def resolve_digest(ref: str, connection: Any = None) -> str:
    """The digest the registry serves for image `ref` now, logging in with `connection`
    (a RegistryConnection) when it is for the image's registry."""
    host = split_reference(ref)[0]
    try:
        auth = get_provider(connection.provider).login(connection) if connection else None
    except RegistryError as exc:
        raise EngineError(f"registry login failed: {one_line(exc)}") from exc
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
        raise EngineError(f"registry refused to resolve {ref}: {one_line(explanation)}") from exc
    except requests.RequestException as exc:
        raise EngineError(
            f"cannot reach registry {host}: {one_line(exc)}", system=True, retryable=True
        ) from exc
    if not digest:
        raise EngineError(f"image {ref} not found in its registry")
    return digest


def registry_architectures(ref: str, connection: Any = None) -> list[str] | None:
    """The architectures image `ref` is built for, read from its registry (manifest list or
    config blob), logging in with `connection` when it is for the image's registry. None when
    the registry has no such image. Raises RegistryError or requests.RequestException."""
    host = split_reference(ref)[0]
    auth = get_provider(connection.provider).login(connection) if connection else None
    if auth is not None and auth.host != host:
        auth = None  # never hand one registry's credentials to another
    insecure = bool(connection and connection.insecure) or host.split(":")[0] in LOCAL_HOSTS
    return image_architectures(ref, auth, insecure)
