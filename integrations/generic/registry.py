"""Any Docker Registry v2 (CNCF distribution, Harbor, GitLab ...): host, user and password."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from integrations.registries import RegistryAuth

if TYPE_CHECKING:
    from workflows.models import RegistryConnection

HOST_RE = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?(/[a-z0-9._/-]+)?$")


class GenericV2:
    def validate(self, settings: dict) -> dict[str, str]:
        url = settings.get("url") or ""
        if not url:
            return {"url": "a registry host is required, e.g. registry.example.com:5000"}
        if "://" in url or not HOST_RE.match(url):
            return {"url": f'"{url}" is not a registry host (host[:port], no scheme)'}
        if bool(settings.get("username")) != bool(settings.get("password")):
            return {"password": "give both a username and a password, or neither"}
        return {}

    def login(self, connection: RegistryConnection) -> RegistryAuth:
        return RegistryAuth(connection.url, connection.username, connection.password)
