"""Webhook providers (git hosts): one folder each under integrations/ with a `webhook.py`, one
interface and registry here. The hook URL `/hooks/<name>/<hook id>/` names the provider.

A provider is a module that verifies a delivery (Unauthorized) and turns its headers and
payload into a WebhookEvent (BadPayload), so matching and triggering never look at
provider-specific shapes. Adding one: its folder, one `webhook_providers.register` line and
one integrations.models.Provider choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from atmosly.plugins import Registry
from integrations.webhooks.events import WebhookEvent


class WebhookProvider(Protocol):
    NAME: str
    EVENT_HEADER: str
    KEPT_HEADERS: tuple[str, ...]  # kept on the delivery log, besides the common ones

    def delivery_id(self, headers: Mapping[str, str]) -> str:
        """The provider's id of this delivery ("" when it sends none)."""
        ...

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        """Raises Unauthorized unless the delivery is signed (or carries the token) with
        `secret`."""
        ...

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """The delivery, normalized; raises BadPayload for what cannot be read."""
        ...


# Keys are integrations.models.Provider values, and each module's NAME.
webhook_providers: Registry[WebhookProvider] = Registry("webhook provider")
webhook_providers.register("github", "integrations.github.webhook")
webhook_providers.register("gitlab", "integrations.gitlab.webhook")
webhook_providers.register("bitbucket", "integrations.bitbucket.webhook")
