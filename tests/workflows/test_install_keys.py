"""Per-install keys (issue 10, part 3): `scripts/install-keys` (called by scripts/run) makes an
encryption key and a secret key in .run/ with mode 600 and keeps them; the web server and the
worker refuse to start on the development keys when DEBUG is off."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def exports(directory: Path) -> dict[str, str]:
    out = subprocess.run(
        [ROOT / "scripts" / "install-keys", directory],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    ).stdout
    script = f'{out}\nprintf \'%s\\n%s\\n\' "$ENCRYPTION_KEYS" "$SECRET_KEY"'
    key, secret = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return {"ENCRYPTION_KEYS": key, "SECRET_KEY": secret}


def start(what: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Starts the web application (imports it as daphne does) or the worker."""
    argv = {
        "web": [sys.executable, "-c", "import atmosly.asgi"],
        "worker": [sys.executable, "manage.py", "qcluster", "--run-once"],
    }[what]
    # An empty database of its own: the worker must never touch a real one.
    database = env.get("DATABASE_URL", "sqlite:////nonexistent/never-opened.sqlite3")
    return subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "atmosly.settings",
            "DATABASE_URL": database,
            **env,
        },
    )


def test_install_keys_makes_private_keys_once(tmp_path):
    first = exports(tmp_path / "run")
    Fernet(first["ENCRYPTION_KEYS"].encode())  # a valid Fernet key
    assert len(first["SECRET_KEY"]) >= 50
    for name in ("encryption-key", "secret-key"):
        mode = stat.S_IMODE(os.stat(tmp_path / "run" / name).st_mode)
        assert mode == 0o600, oct(mode)
    assert exports(tmp_path / "run") == first  # kept: it must still read what it encrypted
    assert exports(tmp_path / "other") != first  # per install


def test_web_and_worker_refuse_the_development_keys_without_debug(tmp_path):
    for what in ("web", "worker"):
        refused = start(what, {})
        assert refused.returncode != 0
        assert "ENCRYPTION_KEYS" in refused.stderr and "refusing to start" in refused.stderr
    assert start("web", exports(tmp_path)).returncode == 0
    assert start("web", {"DEBUG": "1"}).returncode == 0


def test_reencrypt_moves_secrets_off_the_development_key(settings, workflow):
    """What scripts/run does once for a database written before per-install keys."""
    from django.core.management import call_command
    from django.db import connection

    from atmosly import crypto
    from workflows.models import CIVariable

    new_key, test_key = Fernet.generate_key().decode(), settings.ENCRYPTION_KEYS[0]
    try:
        settings.ENCRYPTION_KEYS = [settings.DEV_ENCRYPTION_KEY]
        crypto._fernet.cache_clear()
        CIVariable.objects.create(
            workflow=workflow, key="OLD_ONE", secret_value="old-secret-1234", is_secret=True
        )
        settings.ENCRYPTION_KEYS = [new_key, test_key]  # the fixture's rows use the test key
        crypto._fernet.cache_clear()
        out = io.StringIO()
        call_command("reencrypt_secrets", "--from-development-key", stdout=out)
        assert "re-encrypted" in out.getvalue()
        settings.ENCRYPTION_KEYS = [new_key]
        crypto._fernet.cache_clear()
        assert CIVariable.objects.get(key="OLD_ONE").secret_value == "old-secret-1234"
        with connection.cursor() as cursor:
            cursor.execute("select secret_value from workflows_civariable where key = 'OLD_ONE'")
            (raw,) = cursor.fetchone()
        Fernet(new_key.encode()).decrypt(raw.encode())  # under the new key now
    finally:
        crypto._fernet.cache_clear()
