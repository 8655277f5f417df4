"""The checks behind the Test buttons, run by `atmosly.probes` off the request thread. Each
returns `{"summary": str, "items": [str]}` or raises with the message the user reads."""

from __future__ import annotations

from typing import Any

import requests

from integrations.git.remote import list_remote_refs
from integrations.podman.distribution import check_login, list_tags, split_reference
from integrations.registries import RegistryAuth, RegistryError, get_provider
from integrations.secret_managers import secret_managers
from workflows.models import RegistryConnection

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SETTINGS = (
    "provider",
    "url",
    "username",
    "password",
    "aws_access_key_id",
    "aws_region",
    "aws_endpoint_url",
    "insecure",
)


def git_refs(url: str, username: str, token: str, ssh_key: str = "") -> dict[str, Any]:
    """`git ls-remote` with the credentials: the branches and tags, or git's own error."""
    refs = list_remote_refs(url, username, token, ssh_key)
    return {**refs.as_probe(), "branches": refs.branches, "tags": refs.tags, "head": refs.head}


def connection_settings(registry: RegistryConnection | None) -> dict[str, Any] | None:
    """Plain values (the probe thread must not touch the database) of a saved connection."""
    if registry is None:
        return None
    return {field: getattr(registry, field) for field in SETTINGS}


def login(settings: dict[str, Any]) -> tuple[RegistryAuth, bool]:
    connection = RegistryConnection(
        **{k: settings.get(k) or "" for k in SETTINGS if k != "insecure"}
    )
    connection.insecure = bool(settings.get("insecure"))
    return get_provider(connection.provider).login(connection), connection.insecure


def registry_login(settings: dict[str, Any]) -> dict[str, Any]:
    """The real login: the provider's (an ECR token from AWS, a GCP key ...), then the
    registry's own auth handshake on `/v2/`."""
    try:
        auth, insecure = login(settings)
        check_login(auth.host, auth, insecure)
    except requests.RequestException as exc:
        raise RegistryError(f"cannot reach the registry: {exc}") from exc
    who = f" as {auth.username}" if auth.username else ""
    return {"summary": f"Logged in to {auth.host}{who}", "items": []}


def image_tags(image: str, settings: dict[str, Any] | None) -> dict[str, Any]:
    """The tags of a pre-built image's repository, with the chosen connection's credentials
    when it is for the image's registry (never another registry's)."""
    host = split_reference(image)[0]
    auth, insecure = None, host.split(":")[0] in LOCAL_HOSTS
    if settings:
        auth, insecure = login(settings)
        if auth.host != host:
            auth = None
    try:
        tags = list_tags(image, auth, insecure)
    except requests.RequestException as exc:
        raise RegistryError(f"cannot reach {host}: {exc}") from exc
    return {"summary": f"{len(tags)} tags", "items": tags[:50]}


def secret_reference(manager: str, ref: str) -> dict[str, Any]:
    """Resolves a secret-manager reference as a run would; says only that it resolved and how
    long the value is, never the value."""
    value = secret_managers.get(manager).read_secret(ref)
    return {"summary": f"Resolved: a value of {len(value)} characters", "items": []}
