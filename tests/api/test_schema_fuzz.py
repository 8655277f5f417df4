"""Schemathesis over every operation of `/api/schema/`, as a Viewer, a Developer and an Admin.

Checks: no server error, every answer matches its documented schema, every status code is
documented. Both valid and invalid input are generated (schemathesis' examples, coverage and
fuzzing phases). The app runs in process through its WSGI handler inside the test's database
transaction, so nothing is committed: runs it starts stay Pending (their enqueue waits for a
commit that never comes), no worker or engine is touched, and no server is needed.

Bounded: `MAX_EXAMPLES` fuzzed cases per operation and role, derandomized so every run sends the
same requests (about 3 x 56 operations, a minute or two of CPU on this machine kind).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from atmosly.wsgi import application
from triggers.runs import check_run_workflow

MAX_EXAMPLES = 10
ROLES = {"viewer": "carol", "developer": "bob", "admin": "alice"}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@schema.hook
def map_path_parameters(context, path_parameters: dict) -> dict:
    """Folds mid-sized ids onto the few rows the fixtures make, so detail operations reach real
    objects; small ids and ids beyond any row (the overflow cases) are sent as generated."""
    if not path_parameters:
        return path_parameters
    return {
        name: 1 + value % 8 if isinstance(value, int) and 8 < value < 10**6 else value
        for name, value in path_parameters.items()
    }


@pytest.fixture
def in_process_wsgi():
    """Django's WSGI handler closes the database connection after each request; like Django's
    test client, keep it open so the requests run inside the test's transaction."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(params=list(ROLES))
def token(request, users, workflow, in_process_wsgi) -> str:
    check_run_workflow(users["alice"], workflow, ref="main")  # an execution with its stages
    return Token.objects.create(user=users[ROLES[request.param]]).key


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
