from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from atmosly.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

ROLES = {"viewer": "carol", "developer": "bob", "admin": "alice"}


@pytest.fixture
def keep_connection():
    # Django's WSGI handler closes the connection after each request; the test client unhooks
    # that so the test's transaction survives, and so must we.
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(params=list(ROLES))
def token(request, users, workflow, keep_connection):
    return Token.objects.create(user=users[ROLES[request.param]]).key


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case, token):
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )
