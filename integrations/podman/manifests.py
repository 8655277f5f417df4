"""Multi-arch images on podman: a local manifest list of the per-platform builds, pushed with
its images as one index under a tag.

The Docker-compatible API has no manifest list routes; podman's libpod API, served on the same
socket, has them. Measured on podman 4.3.1:
- `POST /v4.0.0/libpod/manifests/<name>?images=containers-storage:<id>` creates the list (201).
  A bare image id is taken for a repository name and refused, and `sha256:<id>` is looked up
  on Docker Hub: the `containers-storage:` transport names the local image. (4.3's
  `/libpod/manifests/create` is no create endpoint: it makes a list named "create".)
- `POST /v4.0.0/libpod/manifests/<name>/registry/<host>/<repo>:<tag>?all=true` pushes the list
  and every image it names, and answers `{"Id": "sha256:<index digest>"}`; errors come back
  as 4xx/5xx with `cause` and `message`. Credentials go in the `X-Registry-Auth` header.
- `DELETE /v4.0.0/libpod/manifests/<name>` removes the local list (not its images).
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import TYPE_CHECKING
from urllib.parse import quote

import docker

if TYPE_CHECKING:
    import requests

LIBPOD = "/v4.0.0/libpod/manifests"


class ManifestError(Exception):
    """podman refused to create or push the list; the message is its own."""


def _url(client: docker.DockerClient, path: str) -> str:
    # docker-py's private URL builder: its session and base URL reach podman's libpod API.
    return client.api._url(f"{LIBPOD}/{path}", versioned_api=False)  # type: ignore[attr-defined]


def _explain(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    return body.get("message") or body.get("cause") or response.text


def create_list(client: docker.DockerClient, name: str, image_ids: list[str]) -> None:
    """A local manifest list `name` of the local images `image_ids` (with or without sha256:)."""
    images = [f"containers-storage:{i.removeprefix('sha256:')}" for i in image_ids]
    response = client.api.post(
        _url(client, quote(name, safe="")), params={"images": images}, timeout=120
    )
    if response.status_code >= 300:
        raise ManifestError(_explain(response))


def push_list(
    client: docker.DockerClient,
    name: str,
    destination: str,
    auth_config: dict[str, str] | None,
    tls_verify: bool,
) -> str:
    """Pushes list `name` and its images to `destination` (host/repository:tag); returns the
    index digest the registry stores it under."""
    headers = {}
    if auth_config:
        encoded = json.dumps(auth_config).encode()
        headers["X-Registry-Auth"] = base64.urlsafe_b64encode(encoded).decode()
    response = client.api.post(
        _url(client, f"{quote(name, safe='')}/registry/{destination}"),
        params={"all": "true", "tlsVerify": "true" if tls_verify else "false"},
        headers=headers,
        timeout=None,  # podman says nothing until every image and the index are up
    )
    if response.status_code >= 300:
        raise ManifestError(_explain(response))
    digest = response.json().get("Id", "")
    if not digest.startswith("sha256:"):
        raise ManifestError(f"podman did not report the pushed index digest: {response.text}")
    return digest


def remove_list(client: docker.DockerClient, name: str) -> None:
    """Best effort: the list's images stay; they are the run's local tags."""
    with contextlib.suppress(Exception):
        client.api.delete(_url(client, quote(name, safe="")))
