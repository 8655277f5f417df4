"""The workflow document is described once (workflows/document.py) and used both ways: every
field written through the API is stored and read back as sent, and the serializer that
validates a document also renders the stored one."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from tests.base import client_for
from workflows.document import WorkflowDocumentSerializer
from workflows.models import Environment, Workflow
from workflows.services import editable_part

pytestmark = pytest.mark.django_db


def leaf_paths(value, prefix: str = "") -> set[str]:
    """The document's leaf paths, list items as `[0]` (an empty list or mapping is a leaf)."""
    if isinstance(value, dict) and value and prefix != "layout.positions.":
        return set().union(*(leaf_paths(v, f"{prefix}{k}.") for k, v in value.items()))
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return set().union(*(leaf_paths(v, f"{prefix.rstrip('.')}[0].") for v in value))
    return {prefix.rstrip(".")}


def serializer_paths(serializer, prefix: str = "") -> set[str]:
    from rest_framework import serializers

    out: set[str] = set()
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.ListSerializer):
            out |= serializer_paths(field.child, f"{prefix}{name}[0].")
        elif isinstance(field, serializers.Serializer):
            out |= serializer_paths(field, f"{prefix}{name}.")
        else:
            out.add(f"{prefix}{name}")
    return out


def every_field_document() -> dict:
    """A valid App CD document with a value in every field, most of them not the default."""
    return {
        "name": "every-field",
        "pipeline_type": "app_cd",
        "source": {
            "kind": "git",
            "trigger": "automatic",
            "branches": [
                {"pattern": "main", "match": "exact"},
                {"pattern": "release/*", "match": "wildcard"},
            ],
            "tags": ["v*"],
            "pull_requests": False,
            "image": "registry.example.org/base:1",
            "concurrency": "cancel_in_progress",
        },
        "build": {
            "dockerfile": "docker/Dockerfile.prod",
            "context": "app",
            "platform": "linux/amd64,linux/arm64",
            "cache": False,
            "spot_instances": True,
            "volume_size_gb": 50,
            "builder": "kubernetes",
            "builder_environment": "builds",
        },
        "push": {
            "registry": "local",
            "repository": "team/app",
            "tag_template": "{branch}-{number}",
        },
        "deploy": {
            "port": 8081,
            "replicas": 3,
            "cron_schedule": None,
            "cron_time_zone": "Europe/Paris",
            "cron_concurrency": "Replace",
            "resources": {
                "cpu_request": "250m",
                "memory_request": "128Mi",
                "cpu_limit": "1",
                "memory_limit": "1Gi",
            },
            "health_check_path": "/healthz",
            "environments": [
                {
                    "environment": "staging",
                    "mode": "manual",
                    "required_approvals": 0,
                    "approvers": {"users": [], "groups": []},
                    "allow_self_approval": False,
                    "approval_expiry_hours": 168,
                    "auto_rollback": True,
                },
                {
                    "environment": "prod",
                    "mode": "automatic",
                    "required_approvals": 2,
                    "approvers": {"users": ["alice", "dave"], "groups": ["releasers"]},
                    "allow_self_approval": True,
                    "approval_expiry_hours": 24,
                    "auto_rollback": False,
                },
            ],
        },
        "scripts": {
            "pre_build": "echo pre-build",
            "post_build": "echo post-build",
            "post_push": "echo post-push",
            "post_deploy": "echo post-deploy",
        },
        "variables": [
            {
                "key": "API_URL",
                "value": "https://api.example.org",
                "secret": False,
                "scope": "both",
                "secret_manager": None,
                "secret_ref": "",
            },
            {
                "key": "DB_PASSWORD",
                "value": None,
                "secret": True,
                "scope": "runtime",
                "secret_manager": "aws",
                "secret_ref": "arn:aws:secretsmanager:eu-west-1:1:secret:db",
            },
            {
                "key": "NPM_TOKEN",
                "value": "s3cr3t-npm-token",
                "secret": True,
                "scope": "build",
                "secret_manager": None,
                "secret_ref": "",
            },
        ],
        "scanners": {
            "detect_secrets": True,
            "trivy": True,
            "sonarqube": True,
            "fail_on": "critical",
        },
        "stage_timeout_minutes": 90,
        "layout": {"positions": {"source": {"x": 10.5, "y": -3.0}, "prod": {"x": 400.0, "y": 0.0}}},
    }


@pytest.fixture
def builds(project):
    Group.objects.get_or_create(name="releasers")
    return Environment.objects.create(
        project=project, name="builds", namespace="builds", target="kubernetes", order=9
    )


def test_every_field_is_stored_and_read_back_as_sent(workflow, users, builds):
    document = every_field_document()
    # The test document covers the whole description: a new field must be added here too.
    assert leaf_paths(document) == serializer_paths(
        WorkflowDocumentSerializer(service=workflow.service)
    )
    client = client_for(users["alice"])
    answer = client.put(f"/api/workflows/{workflow.pk}/", document, format="json")
    assert answer.status_code == 200, answer.content
    expected = {**document, "variables": [dict(v) for v in document["variables"]]}
    expected["variables"][2]["value"] = None  # secret values never leave the server
    assert editable_part(answer.json()) == expected
    stored = client.get(f"/api/workflows/{workflow.pk}/").json()
    assert editable_part(stored) == expected
    row = Workflow.objects.get(pk=workflow.pk)
    assert (row.builder_environment, row.registry.name, row.cron_schedule) == (builds, "local", "")
    assert row.variables.get(key="NPM_TOKEN").secret_value == "s3cr3t-npm-token"


def test_the_serializer_that_validates_also_renders_the_stored_document(workflow, users):
    answer = client_for(users["alice"]).get(f"/api/workflows/{workflow.pk}/").json()
    assert WorkflowDocumentSerializer(workflow).data == editable_part(answer)


def test_sections_are_checked_after_every_field_in_document_order(workflow, users):
    """A section's rules run only on a document whose fields all parsed, and their errors come
    in the document's order, each on its own path."""
    client = client_for(users["alice"])
    url = f"/api/workflows/{workflow.pk}/"
    document = client.get(url).json()
    document["deploy"]["replicas"] = "many"
    document["push"]["registry"] = "nope"
    answer = client.put(url, document, format="json")
    assert [e["field"] for e in answer.json()["errors"]] == ["deploy.replicas"]
    document["deploy"]["replicas"] = 1
    document["deploy"]["cron_schedule"] = "* * * * *"
    document["source"]["pull_requests"] = True
    document["variables"].append({"key": "API_URL", "value": "again"})
    answer = client.put(url, document, format="json")
    assert answer.status_code == 400
    assert [(e["field"], e["message"]) for e in answer.json()["errors"]] == [
        ("source.pull_requests", "only CI workflows build pull requests"),
        ("push.registry", 'registry "nope" does not exist in project "demo"'),
        ("deploy.cron_schedule", "only a Cron CD workflow has a schedule"),
        (f"variables[{len(document['variables']) - 1}].key", '"API_URL" is defined twice'),
    ]
    assert Workflow.objects.get(pk=workflow.pk).version == workflow.version
