"""Container registry providers: one folder each under integrations/, one interface and
registry here.

A provider checks a connection's settings at save time and, at push time, turns the stored
connection into the registry host and the credentials the docker SDK logs in with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from workflows.models import RegistryConnection

from atmosly.plugins import Registry
from integrations.errors import ProviderError


class RegistryError(ProviderError):
    """The registry (or its token service) refused or could not be reached."""


@dataclass(frozen=True)
class RegistryAuth:
    host: str  # e.g. 127.0.0.1:5000, docker.io, 123456789012.dkr.ecr.eu-west-1.amazonaws.com
    username: str
    password: str

    def auth_config(self) -> dict[str, str] | None:
        if not self.username and not self.password:
            return None
        return {"username": self.username, "password": self.password}


class RegistryProvider(Protocol):
    def validate(self, settings: dict) -> dict[str, str]: ...

    def login(self, connection: RegistryConnection) -> RegistryAuth: ...


# Keys are workflows.models.RegistryProvider values.
providers: Registry[type[RegistryProvider]] = Registry("registry provider")
providers.register("ecr", "integrations.ecr.registry:Ecr")
providers.register("dockerhub", "integrations.dockerhub.registry:DockerHub")
providers.register("gcr", "integrations.gcr.registry:Gcr")
providers.register("gar", "integrations.gar.registry:Gar")
providers.register("generic", "integrations.generic.registry:GenericV2")


def get_provider(kind: str) -> RegistryProvider:
    """The provider for a connection's `provider`. Raises UnknownPlugin (a KeyError)."""
    return providers.get(kind)()


def validate_registry_settings(settings: dict) -> dict[str, str]:
    kind = settings.get("provider")
    if not kind:
        return {"provider": "choose a provider"}
    return get_provider(kind).validate(settings)


def image_name(host: str, repository: str) -> str:
    """docker.io images are addressed without the host by the engine."""
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return repository if "/" in repository else f"library/{repository}"
    return f"{host}/{repository}"
