from __future__ import annotations

from django.apps import AppConfig


class AtmoslyConfig(AppConfig):
    name = "atmosly"

    def ready(self) -> None:
        # Imported in ready(), Django's place for it: importing the module registers the checks.
        from atmosly import checks  # noqa: F401  (registers the deploy checks)
