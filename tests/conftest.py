from __future__ import annotations

import pytest

from tests import base

pytest_plugins = ["tests.realparts"]


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
