"""GCP Secret Manager through its REST API (no extra SDK): needs GOOGLE_OAUTH_ACCESS_TOKEN."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request

from integrations.errors import ProviderError

API = os.environ.get("GCP_SECRET_MANAGER_ENDPOINT", "https://secretmanager.googleapis.com")


class GcpSecretsError(ProviderError):
    """GCP Secret Manager refused, or the worker has no token for it."""


def read_secret(secret_ref: str) -> str:
    """`secret_ref` is `projects/P/secrets/S` (the latest version) or a full version name."""
    token = os.environ.get("GOOGLE_OAUTH_ACCESS_TOKEN", "")
    if not token:
        raise GcpSecretsError(
            "GCP Secret Manager: the worker has no GOOGLE_OAUTH_ACCESS_TOKEN", system=True
        )
    name = secret_ref if "/versions/" in secret_ref else f"{secret_ref}/versions/latest"
    request = urllib.request.Request(
        f"{API}/v1/{name}:access", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as exc:
        raise GcpSecretsError(
            f"GCP Secret Manager: cannot read {secret_ref!r} (HTTP {exc.code})"
        ) from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise GcpSecretsError(f"GCP Secret Manager unreachable: {exc}", system=True) from exc
    return base64.b64decode(payload["payload"]["data"]).decode()
