"""Docker Hub: a username and an access token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.registries import RegistryAuth

if TYPE_CHECKING:
    from workflows.models import RegistryConnection


class DockerHub:
    def validate(self, settings: dict) -> dict[str, str]:
        errors = {}
        if not settings.get("username"):
            errors["username"] = "Docker Hub needs the account's username"
        if not settings.get("password"):
            errors["password"] = "Docker Hub needs an access token"
        return errors

    def login(self, connection: RegistryConnection) -> RegistryAuth:
        return RegistryAuth(connection.url or "docker.io", connection.username, connection.password)
