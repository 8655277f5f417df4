"""Re-encrypts every stored credential with the first key of ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from atmosly import crypto


class Command(BaseCommand):
    help = (
        "Re-encrypts every encrypted column with the first key of ENCRYPTION_KEYS, reading with "
        "any of them. To rotate: put the new key first, run this, then drop the old key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from-development-key",
            action="store_true",
            help="also read values encrypted with the development key from the source",
        )

    def handle(self, *args: Any, from_development_key: bool = False, **options: Any) -> None:
        if from_development_key and settings.DEV_ENCRYPTION_KEY not in settings.ENCRYPTION_KEYS:
            settings.ENCRYPTION_KEYS = [*settings.ENCRYPTION_KEYS, settings.DEV_ENCRYPTION_KEY]
        crypto._fernet.cache_clear()
        count = 0
        for model in apps.get_models():
            fields = [
                f.name
                for f in model._meta.concrete_fields
                if isinstance(f, crypto.EncryptedTextField)
            ]
            if not fields:
                continue
            # Reading decrypts with any key; saving encrypts with the first.
            for row in model._base_manager.all().iterator():
                row.save(update_fields=fields)
                count += 1
        self.stdout.write(f"re-encrypted {count} rows with the first key of ENCRYPTION_KEYS")
