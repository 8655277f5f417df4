"""Google Container Registry: a service-account JSON key, sent as user `_json_key`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from integrations.registries import RegistryAuth

if TYPE_CHECKING:
    from workflows.models import RegistryConnection


def validate_json_key(settings: dict) -> dict[str, str]:
    try:
        key = json.loads(settings.get("password") or "")
    except ValueError:
        return {"password": "paste the service account's JSON key"}
    if not isinstance(key, dict) or key.get("type") != "service_account":
        return {"password": 'the JSON key must be of "type": "service_account"'}
    missing = [f for f in ("client_email", "private_key") if not key.get(f)]
    if missing:
        return {"password": f"the JSON key lacks {', '.join(missing)}"}
    return {}


class Gcr:
    default_host = "gcr.io"

    def validate(self, settings: dict) -> dict[str, str]:
        return validate_json_key(settings)

    def login(self, connection: RegistryConnection) -> RegistryAuth:
        return RegistryAuth(connection.url or self.default_host, "_json_key", connection.password)
