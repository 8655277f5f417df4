"""Asks a registry for the digest of an image tag over the Registry v2 HTTP API.

Docker Engine answers this through `GET /distribution/{name}/json` (the docker SDK's
`inspect_distribution`); podman 4.3's compatible API has no such route (404, measured), and
pulling then reading `RepoDigests` is ambiguous there: podman lists every digest the image
ever had under every name it has. So with podman we ask the registry itself: a HEAD of the
manifest returns `Docker-Content-Digest`, after Basic or Bearer-token auth as it challenges.
"""

from __future__ import annotations

import re

import requests

from integrations.registries import RegistryAuth, RegistryError

TIMEOUT_SECONDS = 30
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def split_reference(ref: str) -> tuple[str, str, str]:
    """(host, repository, tag or digest) of an image reference, with Docker's defaults."""
    name, _, digest = ref.partition("@")
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, digest or tag or "latest"
    return "docker.io", name if "/" in name else f"library/{name}", digest or tag or "latest"


def _request(
    method: str, ref: str, path: str, auth: RegistryAuth | None, insecure: bool, headers: dict
) -> requests.Response | None:
    """One Registry v2 call about `ref`'s repository (`path` after /v2/<repository>/), answering
    the registry's auth challenge; None on 404. Raises RegistryError when it refuses,
    requests.RequestException when unreachable."""
    host, repository, _ = split_reference(ref)
    api_host = "registry-1.docker.io" if host in DOCKER_HUB else host
    url = f"{'http' if insecure else 'https'}://{api_host}/v2/{repository}/{path}"
    headers = dict(headers)
    response = requests.request(method, url, headers=headers, timeout=TIMEOUT_SECONDS)
    if response.status_code == 401:
        challenge = response.headers.get("WWW-Authenticate", "")
        headers["Authorization"] = _authorization(challenge, auth)
        response = requests.request(method, url, headers=headers, timeout=TIMEOUT_SECONDS)
    if response.status_code == 404:
        return None
    if response.status_code in (401, 403):
        raise RegistryError(f"{host} refused access to {repository} (HTTP {response.status_code})")
    response.raise_for_status()
    return response


def manifest_digest(ref: str, auth: RegistryAuth | None, insecure: bool) -> str | None:
    """The digest the registry serves for `ref` now, or None when it has no such image.
    Raises RegistryError when it refuses, requests.RequestException when unreachable."""
    reference = split_reference(ref)[2]
    headers = {"Accept": MANIFEST_TYPES}
    response = _request("HEAD", ref, f"manifests/{reference}", auth, insecure, headers)
    return response.headers.get("Docker-Content-Digest") if response is not None else None


def image_architectures(ref: str, auth: RegistryAuth | None, insecure: bool) -> list[str] | None:
    """The CPU architectures image `ref` is built for, e.g. ["amd64", "arm64"], read from the
    registry: a manifest list or OCI index names them per entry (entries for "unknown", such
    as BuildKit's attestations, are left out); a single image's config blob names its one.
    None when the registry has no such image. Raises as `manifest_digest` does."""
    reference = split_reference(ref)[2]
    headers = {"Accept": MANIFEST_TYPES}
    response = _request("GET", ref, f"manifests/{reference}", auth, insecure, headers)
    if response is None:
        return None
    manifest = response.json()
    if "manifests" in manifest:
        found = {
            (m.get("platform") or {}).get("architecture", "unknown") for m in manifest["manifests"]
        }
        return sorted(found - {"unknown"})
    config_digest = (manifest.get("config") or {}).get("digest")
    if not config_digest:  # schema 1, long deprecated: says nothing reliable
        return []
    blob = _request("GET", ref, f"blobs/{config_digest}", auth, insecure, {})
    architecture = blob.json().get("architecture", "") if blob is not None else ""
    return [architecture] if architecture else []


def _authorization(challenge: str, auth: RegistryAuth | None) -> str:
    scheme, _, params = challenge.partition(" ")
    if scheme.lower() == "basic":
        if auth is None:
            raise RegistryError("the registry needs credentials and none are configured")
        request = requests.Request("GET", "http://x", auth=(auth.username, auth.password))
        return request.prepare().headers["Authorization"]
    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    if scheme.lower() != "bearer" or "realm" not in fields:
        raise RegistryError(f"unsupported registry auth challenge: {scheme}")
    token = requests.get(
        fields["realm"],
        params={k: v for k, v in fields.items() if k in ("service", "scope")},
        auth=(auth.username, auth.password) if auth else None,
        timeout=TIMEOUT_SECONDS,
    )
    if token.status_code in (401, 403):
        raise RegistryError("the registry's token service refused the credentials")
    token.raise_for_status()
    body = token.json()
    return f"Bearer {body.get('token') or body.get('access_token')}"


def registry_url(host: str, insecure: bool) -> str:
    api_host = "registry-1.docker.io" if host in DOCKER_HUB else host
    return f"{'http' if insecure else 'https'}://{api_host}"


def authorized_get(url: str, auth: RegistryAuth | None) -> requests.Response:
    """GET answering the registry's auth challenge (Basic, or a Bearer token) once."""
    response = requests.get(url, timeout=TIMEOUT_SECONDS)
    if response.status_code == 401:
        challenge = response.headers.get("WWW-Authenticate", "")
        headers = {"Authorization": _authorization(challenge, auth)}
        response = requests.get(url, headers=headers, timeout=TIMEOUT_SECONDS)
    return response


def check_login(host: str, auth: RegistryAuth | None, insecure: bool) -> None:
    """Logs in as a client does before a push: `GET /v2/` with the credentials (through the
    token service when the registry asks for one). Raises RegistryError when refused."""
    response = authorized_get(f"{registry_url(host, insecure)}/v2/", auth)
    if response.status_code in (401, 403):
        raise RegistryError(f"{host} refused the credentials (HTTP {response.status_code})")
    if response.status_code != 200:
        raise RegistryError(f"{host} answered HTTP {response.status_code} to /v2/")


def list_tags(ref: str, auth: RegistryAuth | None, insecure: bool) -> list[str]:
    """The tags of the image repository named by `ref` (`GET /v2/<repo>/tags/list`)."""
    host, repository, _ = split_reference(ref)
    url = f"{registry_url(host, insecure)}/v2/{repository}/tags/list"
    response = authorized_get(url, auth)
    if response.status_code == 404:
        raise RegistryError(f"{host} has no image repository {repository}")
    if response.status_code in (401, 403):
        raise RegistryError(f"{host} refused access to {repository} (HTTP {response.status_code})")
    response.raise_for_status()
    return sorted(response.json().get("tags") or [], reverse=True)
