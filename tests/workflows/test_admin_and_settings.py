"""The admin site manages every model (no page errors) and roles; settings follow the
environment (PostgreSQL, Redis, keys) and `check --deploy` warns about development keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse

from executions.services import do_create_execution

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_every_admin_page_renders(workflow, users):
    do_create_execution(workflow, ref="main", trigger="manual")
    root = User.objects.create_superuser("root", "root@example.org", "pw")
    client = Client()
    client.force_login(root)
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        assert client.get(reverse("admin:{}_{}_changelist".format(*info))).status_code == 200, info
        if model_admin.has_add_permission(type("R", (), {"user": root})()):
            assert client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 200, info
        obj = model.objects.first()
        if obj is not None:
            page = client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
            assert page.status_code == 200, info
            assert b"s3cr3t-npm-token" not in page.content


def test_roles_are_edited_in_the_admin(db):
    root = User.objects.create_superuser("root", "root@example.org", "pw")
    client = Client()
    client.force_login(root)
    viewer = Group.objects.get(name="Viewer")
    approve = Permission.objects.get(codename="approve_pipeline")
    view = Permission.objects.get(codename="view_workflow")
    response = client.post(
        reverse("admin:auth_group_change", args=[viewer.pk]),
        {"name": "Viewer", "permissions": [view.pk, approve.pk]},
    )
    assert response.status_code == 302
    assert set(viewer.permissions.values_list("codename", flat=True)) == {
        "view_workflow",
        "approve_pipeline",
    }


def settings_in(env: dict[str, str]) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], "
        "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'q': sorted(s.Q_CLUSTER), "
        "'keys': s.ENCRYPTION_KEYS}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "atmosly.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_embedded_defaults_need_no_server():
    embedded = settings_in({})
    assert embedded["db"] == "django.db.backends.sqlite3"
    assert embedded["layer"] == "channels.layers.InMemoryChannelLayer"
    assert "orm" in embedded["q"] and "redis" not in embedded["q"]


def test_postgres_and_redis_by_environment():
    scaled = settings_in(
        {
            "DATABASE_URL": "postgres://wf:pw@db.internal:5432/workflows",
            "REDIS_URL": "redis://cache.internal:6379/0",
            "ENCRYPTION_KEYS": "a2V5LW9uZS1rZXktb25lLWtleS1vbmUta2V5LW9uZTE=,b2xkLWtleQ==",
        }
    )
    assert scaled["db"] == "django.db.backends.postgresql"
    assert scaled["layer"] == "channels_redis.core.RedisChannelLayer"
    assert "redis" in scaled["q"] and "orm" not in scaled["q"]
    assert len(scaled["keys"]) == 2


def test_check_deploy_warns_about_development_keys():
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "atmosly.settings"},
        capture_output=True,
        text=True,
    )
    assert "atmosly.W001" in out.stderr + out.stdout
    assert "atmosly.W002" in out.stderr + out.stdout
