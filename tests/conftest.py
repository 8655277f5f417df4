from __future__ import annotations

import os

import pytest

from tests import base

pytest_plugins = ["tests.realparts"]


@pytest.fixture(autouse=True)
def _empty_redis_queue():
    """In the scale mode django-q2's queue is a Redis list that outlives each test's rolled-back
    transaction: empty it first so a test sees only the tasks it enqueued (the ORM broker's
    rows roll back with the database already)."""
    from django.conf import settings

    if settings.Q_CLUSTER.get("redis"):
        from django_q.brokers import get_broker

        get_broker().purge_queue()
    yield


@pytest.fixture(autouse=True)
def _local_engine_pods(request):
    """After a test on the real engine: the pods its runs played are removed (see
    base.remove_local_pods). Set up before `settings`, so torn down after it: the engine's
    address comes from the environment the real services exported, not from settings."""
    yield
    node = request.node
    if node.get_closest_marker("engine") and node.get_closest_marker("django_db"):
        from django.conf import settings

        base.remove_local_pods(os.environ.get("DOCKER_HOST") or settings.DOCKER_HOST)


@pytest.fixture
def engine(settings, real_services):
    """The real image engine, registries and git server (tests/realparts.py), with the test
    playing the worker: nothing runs inline, the test calls `run_execution` itself."""
    settings.DOCKER_HOST = real_services["DOCKER_HOST"]
    settings.EXECUTIONS_RUN_INLINE = False
    return real_services


@pytest.fixture
def users(db):
    return base.make_users()


@pytest.fixture
def project(users):
    return base.make_project(users)


@pytest.fixture
def environments(project):
    return base.make_environments(project)


@pytest.fixture
def registry(project):
    return base.make_registry(project)


@pytest.fixture
def service(project):
    return base.make_service(project)


@pytest.fixture
def workflow(service, environments, registry):
    return base.save_document(service, base.app_cd_document())


def pytest_sessionfinish(session, exitstatus):
    """Drops this session's PostgreSQL test database even when a worker thread still holds a
    connection to it (pytest-django's own DROP then fails with "being accessed by other users"
    and leaves it behind on the shared cluster)."""
    from django.conf import settings

    conf = settings.DATABASES["default"]
    if conf["ENGINE"] != "django.db.backends.postgresql":
        return
    import psycopg

    try:
        with psycopg.connect(
            dbname="postgres",
            user=conf["USER"],
            password=conf["PASSWORD"],
            host=conf["HOST"],
            port=conf["PORT"],
            autocommit=True,
        ) as admin:
            name = conf.get("TEST", {}).get("NAME")
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # the cluster went away: nothing left to clean
