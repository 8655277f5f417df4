"""`manage.py check --deploy` warns when the development keys are still in use."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_dev_keys(app_configs, **kwargs) -> list[Warning]:
    warnings = []
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        warnings.append(
            Warning(
                "SECRET_KEY is the development default.",
                hint="Set SECRET_KEY in the environment.",
                id="atmosly.W001",
            )
        )
    if settings.DEV_ENCRYPTION_KEY in settings.ENCRYPTION_KEYS:
        warnings.append(
            Warning(
                "ENCRYPTION_KEYS contains the development default key: stored credentials "
                "can be decrypted by anyone with this source code.",
                hint="Generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'` and set ENCRYPTION_KEYS.",
                id="atmosly.W002",
            )
        )
    return warnings
