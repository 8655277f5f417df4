"""The manifests of each pipeline type validate against the Kubernetes OpenAPI schemas
(kubernetes-validate, strict: no unknown fields), carry valid labels, keep secret values out of
the pod spec and give a private registry a pull secret."""

from __future__ import annotations

import base64
import json

import kubernetes_validate
import pytest

from integrations.kubernetes.manifests import (
    LABEL_VALUE_RE,
    DeploySpec,
    build_manifests,
    label_value,
    make_labels,
    object_name,
    pinned_image,
)
from integrations.registries import RegistryAuth

SCHEMA = "1.37.0"
DIGEST = "sha256:" + "ab" * 32


def spec(ptype: str, **overrides) -> DeploySpec:
    labels = make_labels(
        project="demo",
        service="web",
        workflow="deliver",
        environment="prod",
        instance="web",
        execution=42,
        commit="0123456789abcdef" * 2 + "01234567",
    )
    values = {
        "pipeline_type": ptype,
        "name": "web",
        "namespace": "prod",
        "image": pinned_image("registry.example.org/team/web:main-1", DIGEST),
        "labels": labels,
        "selector": {"app.kubernetes.io/instance": "web"},
        "port": 8080 if ptype == "app_cd" else None,
        "replicas": 3,
        "resources": {"cpu_request": "100m", "memory_request": "64Mi", "memory_limit": "256Mi"},
        "health_check_path": "/healthz" if ptype == "app_cd" else "",
        "cron_schedule": "*/15 * * * *",
        "cron_concurrency": "Replace",
        "time_zone": "UTC",
        "env": {"API_URL": "https://api.example.org"},
        "secret_env": {"DB_PASSWORD": "hunter2-very-secret"},
        "pull_auth": RegistryAuth("registry.example.org", "robot", "pull-token-123"),
    }
    values.update(overrides)
    return DeploySpec(**values)


@pytest.mark.parametrize("ptype", ["app_cd", "cron_cd", "worker_cd"])
def test_every_manifest_validates_against_the_openapi_schema(ptype):
    manifests = build_manifests(spec(ptype))
    for manifest in manifests:
        kubernetes_validate.validate(manifest, SCHEMA, strict=True)
    kinds = [m["kind"] for m in manifests]
    expected = {
        "app_cd": ["Secret", "Secret", "Service", "Deployment"],
        "cron_cd": ["Secret", "Secret", "CronJob"],
        "worker_cd": ["Secret", "Secret", "Deployment"],
    }[ptype]
    assert kinds == expected


def test_a_minimal_spec_validates_too():
    for ptype in ("app_cd", "cron_cd", "worker_cd"):
        minimal = spec(ptype, env={}, secret_env={}, pull_auth=None, resources={})
        for manifest in build_manifests(minimal):
            kubernetes_validate.validate(manifest, SCHEMA, strict=True)


def test_an_invalid_manifest_is_caught_by_the_schema():
    manifest = build_manifests(spec("worker_cd"))[-1]
    manifest["spec"]["template"]["spec"]["containers"][0]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError, match="'replica' was unexpected"):
        kubernetes_validate.validate(manifest, SCHEMA, strict=True)


def test_app_cd_deployment_service_probes_resources():
    _, _, svc, deployment = build_manifests(spec("app_cd"))
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 8080, "protocol": "TCP", "targetPort": 8080}
    ]
    assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert container["image"] == f"registry.example.org/team/web@{DIGEST}"
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert container["resources"] == {
        "limits": {"memory": "256Mi"},
        "requests": {"cpu": "100m", "memory": "64Mi"},
    }
    assert {"name": "PORT", "value": "8080"} in container["env"]
    assert pod["imagePullSecrets"] == [{"name": "web-pull"}]


def test_cron_cd_schedule_and_concurrency():
    cron = build_manifests(spec("cron_cd"))[-1]
    assert cron["spec"]["schedule"] == "*/15 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Replace"
    template = cron["spec"]["jobTemplate"]["spec"]["template"]
    assert template["spec"]["restartPolicy"] == "Never"
    assert "ports" not in template["spec"]["containers"][0]


def test_worker_cd_has_no_service_and_no_port():
    manifests = build_manifests(spec("worker_cd"))
    assert "Service" not in [m["kind"] for m in manifests]
    container = manifests[-1]["spec"]["template"]["spec"]["containers"][0]
    assert "ports" not in container and "readinessProbe" not in container


@pytest.mark.parametrize("ptype", ["app_cd", "cron_cd", "worker_cd"])
def test_labels_on_every_object_and_valid(ptype):
    for manifest in build_manifests(spec(ptype)):
        labels = manifest["metadata"]["labels"]
        for key in ("project", "service", "workflow", "environment", "execution", "commit"):
            assert f"workflows.atmosly.io/{key}" in labels
        assert all(LABEL_VALUE_RE.match(v) and len(v) <= 63 for v in labels.values())
    assert labels["workflows.atmosly.io/execution"] == "42"


def test_label_values_and_names_are_made_valid():
    assert label_value("feature/new thing!") == "feature-new-thing"
    long_value = label_value("-x-" * 40)
    assert len(long_value) <= 63 and LABEL_VALUE_RE.match(long_value)
    assert len(label_value("a" * 80)) == 63
    long = object_name("a" * 40, "b" * 40, "prod")
    assert len(long) <= 63 and long != object_name("a" * 40, "b" * 40, "dev")


def test_secret_values_only_in_the_secret():
    manifests = build_manifests(spec("app_cd"))
    pull, env_secret, _, deployment = manifests
    text = json.dumps(deployment)
    assert "hunter2" not in text and "pull-token-123" not in text
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"key": "DB_PASSWORD", "name": "web-env"}},
    } in env
    assert base64.b64decode(env_secret["data"]["DB_PASSWORD"]).decode() == "hunter2-very-secret"
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(pull["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.example.org"]["username"] == "robot"


def test_no_pull_secret_for_an_open_registry():
    manifests = build_manifests(spec("worker_cd", pull_auth=RegistryAuth("127.0.0.1:5000", "", "")))
    assert [m["metadata"]["name"] for m in manifests] == ["web-env", "web"]
    assert "imagePullSecrets" not in manifests[-1]["spec"]["template"]["spec"]


def test_pinned_image():
    assert pinned_image("127.0.0.1:5000/a/b:v1", DIGEST) == f"127.0.0.1:5000/a/b@{DIGEST}"
    assert pinned_image("nginx", DIGEST) == f"nginx@{DIGEST}"
    assert pinned_image("nginx:1.27", "") == "nginx:1.27"
