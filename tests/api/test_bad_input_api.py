"""Bad input to the API gets a 4xx with a reason, never a 500 (issue 10, part 4).

Each example schemathesis found is here as a plain test; test_schema_fuzz.py looks for more.
"""

from __future__ import annotations

import json

import pytest
import yaml
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from atmosly.api_input import MAX_ID
from tests import base
from workflows.models import Project, RegistryConnection

pytestmark = pytest.mark.django_db

HUGE = 12455631317395159075782656  # the example from the issue: above SQLite's 64-bit range


def nested(depth: int) -> str:
    """JSON text of objects nested `depth` deep (json.dumps itself would hit the stack limit)."""
    return '{"a": ' * depth + "{}" + "}" * depth


def assert_error(response, code: int, field: str | None = None) -> dict:
    assert response.status_code == code, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


# OPTIONS


def api_paths() -> list[str]:
    """Every API URL pattern, its ids filled with 1 (a row the fixtures make)."""
    paths = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                paths.append(prefix + str(p.pattern))

    walk(get_resolver().url_patterns, "")
    out = set()
    for raw in paths:
        if not raw.startswith("api/") or "(?P<format>" in raw or "\\.(?P" in raw:
            continue
        path = raw
        for token in ("(?P<pk>[^/.]+)", "<int:pk>", "<int:execution_id>", "<int:report_id>"):
            path = path.replace(token, "1")
        path = path.replace("^", "").replace("$", "")
        if "<" in path or "(" in path:
            continue
        out.add("/" + path)
    return sorted(out)


def test_every_api_endpoint_answers_options(users, workflow):
    paths = api_paths()
    assert "/api/workflows/" in paths and "/api/workflows/1/run/" in paths
    client = base.client_for(users["alice"])
    for path in paths:
        response = client.options(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        if path.startswith(("/api/auth/log", "/api/schema/")):
            continue  # Django's login pages; the schema answers in OpenAPI's own media type
        assert response["Content-Type"].split(";")[0] in ("application/json", "application/yaml")


def test_options_on_workflows_describes_the_endpoint(users, workflow):
    response = base.client_for(users["alice"]).options("/api/workflows/")
    assert response.status_code == 200
    assert "application/yaml" in response.json()["parses"]


# Ids out of the database's range


@pytest.mark.parametrize("endpoint", ["/api/services/", "/api/environments/", "/api/registries/"])
def test_huge_project_id_in_a_body_is_400_naming_the_field(users, project, endpoint):
    body = {
        "project": HUGE,
        "name": "x",
        "repo_url": "https://git.example.org/x.git",
        "provider": "generic",
        "url": "127.0.0.1:5000",
    }
    response = base.client_for(users["alice"]).post(endpoint, body, format="json")
    assert_error(response, 400, "project")


@pytest.mark.parametrize("value", [MAX_ID + 1, -1, 0, 1e30, "9" * 40, True])
def test_project_id_that_cannot_be_a_row_is_400(users, project, value):
    body = {"project": value, "name": "web2", "repo_url": "https://git.example.org/x.git"}
    response = base.client_for(users["alice"]).post("/api/services/", body, format="json")
    assert_error(response, 400, "project")


def test_a_project_description_over_2000_characters_is_400_and_nothing_changes(users, project):
    client = base.client_for(users["alice"])
    response = client.patch(
        f"/api/projects/{project.pk}/", {"description": "d" * 2001}, format="json"
    )
    body = assert_error(response, 400, "description")
    assert "2000" in body["errors"][0]["message"]
    assert Project.objects.get(pk=project.pk).description == project.description
    ok = client.patch(f"/api/projects/{project.pk}/", {"description": "d" * 2000}, format="json")
    assert ok.status_code == 200, ok.content[:300]


@pytest.mark.parametrize("secret", [False, True])
def test_a_variable_value_over_48_kib_is_400_naming_it(users, workflow, secret):
    client = base.client_for(users["alice"])
    variable = {"key": "BIG", "value": "v" * (48 * 1024 + 1), "secret": secret}
    path = f"/api/workflows/{workflow.pk}/"
    before = client.get(path).json()["variables"]
    response = client.patch(path, {"variables": [variable]}, format="json")
    body = assert_error(response, 400, "variables[0].value")
    assert "49152" in body["errors"][0]["message"]
    assert client.get(path).json()["variables"] == before
    variable["value"] = "v" * (48 * 1024)
    assert client.patch(path, {"variables": [variable]}, format="json").status_code == 200


def test_huge_integer_field_is_400_naming_the_field(users, environments):
    env = environments[0]
    response = base.client_for(users["alice"]).patch(
        f"/api/environments/{env.pk}/", {"order": HUGE}, format="json"
    )
    assert_error(response, 400, "order")


def test_huge_ids_in_a_workflow_document_are_400(users, service):
    response = base.client_for(users["alice"]).post(
        "/api/workflows/", {"service": HUGE, "name": "x"}, format="json"
    )
    assert_error(response, 400, "service")


@pytest.mark.parametrize(
    "path",
    [
        f"/api/projects/{HUGE}/",
        f"/api/services/{HUGE}/",
        f"/api/workflows/{HUGE}/",
        f"/api/workflows/{HUGE}/webhook/",
        f"/api/projects/{HUGE}/webhook-deliveries/",
        f"/api/webhook-deliveries/{HUGE}/",
        f"/api/executions/{HUGE}/",
        f"/api/executions/{HUGE}/reports/{HUGE}/download/",
        f"/api/releases/{HUGE}/",
        f"/api/approvals/{HUGE}/",
    ],
)
def test_huge_id_in_a_path_is_404(users, project, path):
    response = base.client_for(users["alice"]).get(path)
    assert_error(response, 404)


@pytest.mark.parametrize(
    "path,field",
    [
        (f"/api/services/?project={HUGE}", "project"),
        (f"/api/workflows/?service={HUGE}", "service"),
        (f"/api/executions/?workflow={HUGE}", "workflow"),
        (f"/api/executions/stats/?project={HUGE}", "project"),
        (f"/api/releases/?environment={HUGE}", "environment"),
        (f"/api/releases/what-runs-where/?service={HUGE}", "service"),
    ],
)
def test_huge_id_in_a_query_is_400_naming_the_parameter(users, project, path, field):
    assert_error(base.client_for(users["alice"]).get(path), 400, field)


def test_huge_log_sequence_is_not_an_error(users, workflow):
    from triggers.runs import check_run_workflow

    execution = check_run_workflow(users["alice"], workflow, ref="main")
    response = base.client_for(users["alice"]).get(
        f"/api/executions/{execution.pk}/logs/?after={HUGE}"
    )
    assert response.status_code == 200 and response.json() == []


# Deletes that other rows still need


def test_deleting_a_registry_in_use_is_409_naming_the_workflow(users, workflow):
    registry = RegistryConnection.objects.get(pk=workflow.registry_id)
    response = base.client_for(users["alice"]).delete(f"/api/registries/{registry.pk}/")
    body = assert_error(response, 409)
    assert {"type": "workflow", "id": workflow.pk, "name": str(workflow)} in body["blocked_by"]
    assert body["blocked_by_count"] == 1
    assert "workflows" in body["detail"]
    assert RegistryConnection.objects.filter(pk=registry.pk).exists()


def test_deleting_a_project_still_in_use_is_409_and_deletes_nothing(users, workflow):
    from triggers.runs import check_run_workflow

    check_run_workflow(users["alice"], workflow, ref="main")
    project = workflow.service.project
    alice = base.client_for(users["alice"])
    response = alice.delete(f"/api/projects/{project.pk}/")
    body = assert_error(response, 409)
    assert body["blocked_by"] and body["blocked_by_count"] >= len(body["blocked_by"])
    assert Project.objects.filter(pk=project.pk).exists()
    assert alice.get(f"/api/workflows/{workflow.pk}/").status_code == 200


# Documents nested too deep, or too large


@pytest.mark.parametrize("endpoint", ["/api/services/", "/api/workflows/", "/api/projects/"])
def test_json_nested_1000_deep_is_400(users, service, endpoint):
    body = '{"name": "x", "layout": ' + nested(1000) + "}"
    response = base.client_for(users["alice"]).post(endpoint, body, content_type="application/json")
    assert_error(response, 400)


def test_json_nested_a_little_too_deep_is_400_with_the_limit(users, workflow):
    body = '{"layout": ' + nested(70) + "}"
    response = base.client_for(users["alice"]).patch(
        f"/api/workflows/{workflow.pk}/", body, content_type="application/json"
    )
    assert "64 levels" in assert_error(response, 400)["detail"]


def test_yaml_nested_1000_deep_is_400(users, workflow):
    body = "layout: " + "[" * 1000 + "]" * 1000 + "\n"
    response = base.client_for(users["alice"]).put(
        f"/api/workflows/{workflow.pk}/", body, content_type="application/yaml"
    )
    assert_error(response, 400)


def test_yaml_alias_bomb_is_400(users, workflow):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    lines.append("layout: {positions: *a8}")
    response = base.client_for(users["alice"]).put(
        f"/api/workflows/{workflow.pk}/", "\n".join(lines), content_type="application/yaml"
    )
    # Refused before anything is expanded: workflow documents take no anchors or aliases.
    assert "aliases are not allowed" in assert_error(response, 400)["detail"]


def test_5mb_json_is_a_json_413(users, project):
    body = json.dumps({"name": "x", "description": "d" * (5 * 1024 * 1024)})
    response = base.client_for(users["alice"]).post(
        "/api/projects/", body, content_type="application/json"
    )
    assert "takes at most" in assert_error(response, 413)["detail"]


def test_5mb_yaml_is_a_json_413(users, workflow):
    body = yaml.safe_dump({"name": "x", "layout": {"note": "y" * (5 * 1024 * 1024)}})
    response = base.client_for(users["alice"]).put(
        f"/api/workflows/{workflow.pk}/", body, content_type="application/yaml"
    )
    assert_error(response, 413)


def test_body_caps_are_per_endpoint(users, workflow):
    """The workflow document takes more than the 256 KiB default (four 64 KiB scripts)."""
    alice = base.client_for(users["alice"])
    script = "echo " + "x" * (60 * 1024)
    document = alice.get(f"/api/workflows/{workflow.pk}/export/?format=json").json()
    document["scripts"] = dict.fromkeys(
        ("pre_build", "post_build", "post_push", "post_deploy"), script
    )
    document["variables"] += [
        {"key": f"NOTE_{i}", "value": "v" * 4096, "scope": "runtime"} for i in range(10)
    ]
    body = json.dumps(document)
    assert len(body) > 256 * 1024
    response = alice.put(f"/api/workflows/{workflow.pk}/", body, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    response = alice.post(
        "/api/projects/",
        json.dumps({"name": "x", "description": "d" * len(body)}),
        content_type="application/json",
    )
    assert_error(response, 413)


def test_body_cap_answers_before_authentication_reads_anything(project):
    """Even anonymous requests are capped: nothing reads a body that is too large."""
    response = Client().post("/api/projects/", "x" * (300 * 1024), content_type="application/json")
    assert_error(response, 413)


# The schema


@pytest.fixture
def schema(db) -> dict:
    return Client().get("/api/schema/", {"format": "json"}).json()


def test_schema_documents_stats_as_stats(schema):
    ok = schema["paths"]["/api/executions/stats/"]["get"]["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"period", "total", "by_status", "success_rate", "by_day"} <= set(
        component["properties"]
    )
    assert "stages" not in component["properties"]


def test_schema_documents_the_errors_each_operation_gives(schema):
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 50
    for path, method, op in operations:
        codes = set(op["responses"])
        label = f"{method.upper()} {path}"
        assert {"401", "403"} <= codes or path == "/api/auth/token/", label
        if "{" in path:
            assert "404" in codes, label
        if "requestBody" in op:
            assert {"400", "413", "415"} <= codes, label
        if method == "delete":
            assert "409" in codes, label
