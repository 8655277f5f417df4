"""Google Artifact Registry: like GCR, but the host names the region (REGION-docker.pkg.dev)."""

from __future__ import annotations

from integrations.gcr.registry import Gcr, validate_json_key


class Gar(Gcr):
    def validate(self, settings: dict) -> dict[str, str]:
        errors = validate_json_key(settings)
        if not settings.get("url"):
            errors["url"] = "Artifact Registry needs its host, e.g. europe-docker.pkg.dev"
        return errors
