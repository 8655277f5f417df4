"""The development keys in the source: the web server and the worker refuse to start with them
when DEBUG is off (`refuse_development_keys`), and `manage.py check --deploy` warns."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured


def refuse_development_keys() -> None:
    """Raises ImproperlyConfigured when DEBUG is off and SECRET_KEY or ENCRYPTION_KEYS is the
    development default from the source: with those, anyone holding a copy of the database
    decrypts every stored secret, and anyone can forge sessions. `scripts/run` makes per-install
    keys (in .run/, mode 600). Called where the web server (asgi.py, wsgi.py) and the worker
    (`manage.py qcluster`) start; other management commands still run, so a fresh checkout can
    migrate or rotate keys."""
    if settings.DEBUG:
        return
    found = []
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        found.append("SECRET_KEY")
    if settings.DEV_ENCRYPTION_KEY in settings.ENCRYPTION_KEYS:
        found.append("ENCRYPTION_KEYS")
    if found:
        raise ImproperlyConfigured(
            f"{' and '.join(found)} still hold the development default from the source and "
            "DEBUG is off: refusing to start. Set them in the environment (./scripts/run makes "
            "per-install keys in .run/), or set DEBUG=1 for development."
        )


@register(Tags.security, deploy=True)
def check_dev_keys(app_configs: object, **kwargs: object) -> list[Warning]:
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
