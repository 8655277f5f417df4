"""Test settings: the product's settings with a fast hasher and a file database, so the worker
thread, the websocket consumer and the test share one SQLite file as they do in production."""

from atmosly.settings import *  # noqa: F403
from atmosly.settings import BASE_DIR, DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".run" / "test-db.sqlite3")}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WORKSPACE_ROOT = BASE_DIR / ".run" / "test-workspaces"
TERMINATION_GRACE_SECONDS = 15
