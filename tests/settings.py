"""Test settings: the product's settings with a fast hasher and a file database, so the worker
thread, the websocket consumer and the test share one SQLite file as they do in production.

The file (and the workspaces) are per test session, so two sessions on one machine (a developer
and CI, or parallel checkouts) never share them; subprocesses inherit the name. With DATABASE_URL
and REDIS_URL (scripts/test's scale-mode pass) the same holds for the PostgreSQL test database,
the django-q2 queue and the channel layer's keys: each carries the session."""

import os
from pathlib import Path

from atmosly.settings import *  # noqa: F403
from atmosly.settings import BASE_DIR, CHANNEL_LAYERS, DATABASES, Q_CLUSTER, REDIS_URL

(BASE_DIR / ".run").mkdir(exist_ok=True)
SESSION = os.environ.setdefault("ATMOSLY_TEST_SESSION", str(os.getpid()))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".run" / f"test-db-{SESSION}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_workflows_{SESSION}"}
# The same in every process of the session (a worker given REDIS_URL by a test included): the
# queue's name also keys django-q2's payload signing, so both sides must agree.
Q_CLUSTER["name"] = f"atmosly-test-{SESSION}"
CHANNEL_PREFIX = f"asgi-test-{SESSION}"
if REDIS_URL:
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = CHANNEL_PREFIX
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# A worker subprocess standing for another machine is given a workspace root of its own.
WORKSPACE_ROOT = Path(
    os.environ.get("WORKSPACE_ROOT") or BASE_DIR / ".run" / f"test-workspaces-{SESSION}"
)
TERMINATION_GRACE_SECONDS = 15
# Not the development defaults: the web server and the worker (started as subprocesses by some
# tests) refuse those when DEBUG is off.
SECRET_KEY = "test-secret-key-not-the-development-default-0123456789"
ENCRYPTION_KEYS = ["dGVzdC1lbmNyeXB0aW9uLWtleS1ub3QtdGhlLWRldi0="]
