"""Workflow documents read strictly through the API: a repeated key is refused (YAML with line
and column, JSON with its path), and YAML values keep the type the document schema says."""

from __future__ import annotations

import json

import pytest

from tests.base import client_for

pytestmark = pytest.mark.django_db

YAML_TWICE = """\
name: twice
pipeline_type: ci
service: {service}
push: {{registry: local, repository: team/app}}
scripts:
  pre_build: echo first
scripts:
  post_build: echo second
"""


def post_yaml(client, text: str):
    return client.post("/api/workflows/", text, content_type="application/yaml")


def test_yaml_with_scripts_twice_is_refused_with_line_and_column(service, registry, users):
    answer = post_yaml(client_for(users["alice"]), YAML_TWICE.format(service=service.pk))
    assert answer.status_code == 400, answer.content
    [error] = answer.json()["errors"]
    assert error["field"] == "scripts"
    assert '"scripts" is given twice (first at line 5, column 1)' in error["message"]
    assert (error["line"], error["column"]) == (7, 1)
    assert not service.workflows.filter(name="twice").exists()


def test_json_with_name_twice_is_refused_with_its_path(service, registry, users):
    body = (
        '{"name": "first", "service": SERVICE, "pipeline_type": "ci", "name": "second",'
        ' "push": {"registry": "local", "repository": "team/app"}}'
    ).replace("SERVICE", str(service.pk))
    answer = client_for(users["alice"]).post(
        "/api/workflows/", body, content_type="application/json"
    )
    assert answer.status_code == 400, answer.content
    [error] = answer.json()["errors"]
    assert error["field"] == "name" and "given twice" in error["message"]
    nested = json.dumps({"x": 1})[:-1] + ', "push": {"registry": "a", "registry": "b"}}'
    answer = client_for(users["alice"]).post(
        "/api/workflows/", nested, content_type="application/json"
    )
    assert answer.json()["errors"][0]["field"] == "push.registry"


YAML_TYPES = """\
name: types
pipeline_type: ci
service: {service}
source:
  trigger: automatic
  branches:
    - pattern: on
    - pattern: 'null'
    - pattern: null-branch
  tags: [1.10, 2024-01-01, yes, 010]
push: {{registry: local, repository: team/app, tag_template: '{{short_sha}}'}}
build: {{cache: no, volume_size_gb: 010}}
variables:
  - {{key: VERSION, value: 1.10}}
  - {{key: OCTAL, value: 010}}
  - {{key: DAY, value: 2024-01-01}}
  - {{key: ANSWER, value: no}}
  - {{key: EMPTY, value: null}}
"""


def test_yaml_values_keep_the_type_the_schema_says(service, registry, users):
    answer = post_yaml(client_for(users["alice"]), YAML_TYPES.format(service=service.pk))
    assert answer.status_code == 201, answer.content
    doc = answer.json()
    assert [b["pattern"] for b in doc["source"]["branches"]] == ["on", "null", "null-branch"]
    assert doc["source"]["tags"] == ["1.10", "2024-01-01", "yes", "010"]
    assert (doc["build"]["cache"], doc["build"]["volume_size_gb"]) == (False, 10)
    values = {v["key"]: v["value"] for v in doc["variables"]}
    assert values == {
        "VERSION": "1.10",
        "OCTAL": "010",
        "DAY": "2024-01-01",
        "ANSWER": "no",
        "EMPTY": "",
    }


def test_a_schema_error_in_yaml_says_the_line_and_column(service, registry, users):
    text = YAML_TYPES.format(service=service.pk).replace(
        "volume_size_gb: 010", "volume_size_gb: big"
    )
    answer = post_yaml(client_for(users["alice"]), text)
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["field"] == "build.volume_size_gb"
    assert (error["line"], error["column"]) == (12, 20)
    assert "(line 12, column 20)" in answer.json()["detail"]
