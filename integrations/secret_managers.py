"""Secret managers: where a CI variable's value may live instead of this database. One folder
each under integrations/, one interface and registry here.

A secret manager is a module with `read_secret(ref) -> str`, raising its own ProviderError
subclass (system=True when the worker is not set up for it). Adding one: its folder, one
`secret_managers.register` line and one SecretManager choice (workflows/models.py).
"""

from __future__ import annotations

from typing import Protocol

from atmosly.plugins import Registry


class SecretManager(Protocol):
    def read_secret(self, secret_ref: str) -> str:
        """The secret's value now; `secret_ref` is in the manager's own notation."""
        ...


# Keys are workflows.models.SecretManager values.
secret_managers: Registry[SecretManager] = Registry("secret manager")
secret_managers.register("aws", "integrations.aws_secrets.client")
secret_managers.register("gcp", "integrations.gcp_secrets.client")
