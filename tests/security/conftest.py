from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests import base


@pytest.fixture
def workflow(service, environments, registry):
    """demo/web/deliver (App CD: dev, staging, prod with dave as approver), timeout 60."""
    return base.save_document(service, base.app_cd_document(stage_timeout_minutes=60))


@pytest.fixture
def other(users):
    """Another project, with its own registry and environment; erin is its only member."""
    project = base.Project.objects.create(name="other")
    project.members.add(users["erin"])
    base.make_registry(project, name="theirs")
    base.make_environments(project, names=("their-env",))
    return project


@pytest.fixture
def root(db) -> User:
    return User.objects.create_superuser("root", "root@example.org", "pw")


def login(user: User) -> Client:
    """A browser session for `user`, made staff so the admin lets them in."""
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client
