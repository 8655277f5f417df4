"""The whole workflow document through the API: round trip (JSON and YAML), validation with
field paths, nothing half-saved, secrets write-only."""

from __future__ import annotations

import pytest
import yaml

from tests.base import client_for
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def errors_of(response) -> dict[str, str]:
    assert response.status_code == 400, response.content
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def test_round_trip_json(workflow, users):
    client = client_for(users["alice"])
    doc = client.get(f"/api/workflows/{workflow.pk}/").json()
    assert doc["pipeline_type"] == "app_cd"
    assert [e["environment"] for e in doc["deploy"]["environments"]] == ["dev", "staging", "prod"]
    assert doc["deploy"]["environments"][2]["approvers"] == {"users": ["dave"], "groups": []}
    secret = next(v for v in doc["variables"] if v["key"] == "NPM_TOKEN")
    assert secret == {
        "key": "NPM_TOKEN",
        "value": None,
        "secret": True,
        "scope": "build",
        "secret_manager": None,
        "secret_ref": "",
    }
    again = client.put(f"/api/workflows/{workflow.pk}/", doc, format="json")
    assert again.status_code == 200, again.content
    bookkeeping = {"updated_at", "version", "updated_by"}
    assert {k: v for k, v in again.json().items() if k not in bookkeeping} == {
        k: v for k, v in doc.items() if k not in bookkeeping
    }
    assert (again.json()["version"], again.json()["updated_by"]) == (2, "alice")
    # The secret kept its stored value although the document carried none.
    stored = Workflow.objects.get(pk=workflow.pk).variables.get(key="NPM_TOKEN")
    assert stored.secret_value == "s3cr3t-npm-token"


def test_secrets_never_leave(workflow, users):
    client = client_for(users["alice"])
    for url in (
        f"/api/workflows/{workflow.pk}/",
        f"/api/workflows/{workflow.pk}/export/",
        "/api/workflows/",
        "/api/schema/",
    ):
        assert b"s3cr3t-npm-token" not in client.get(url).content
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("select secret_value from workflows_civariable where key = 'NPM_TOKEN'")
        (raw,) = cursor.fetchone()
    assert "s3cr3t" not in raw  # encrypted at rest


def test_yaml_export_then_import_as_new_workflow(workflow, service, users):
    client = client_for(users["alice"])
    exported = client.get(f"/api/workflows/{workflow.pk}/export/")
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("application/yaml")
    doc = yaml.safe_load(exported.content)
    assert "id" not in doc and doc["name"] == "deliver"
    doc["name"] = "copy"
    doc["service"] = service.pk
    # A secret's value does not travel: the import must give it again.
    missing = client.post("/api/workflows/", yaml.safe_dump(doc), content_type="application/yaml")
    assert errors_of(missing) == {"variables[1].value": "a secret variable needs a value"}
    doc["variables"][1]["value"] = "another-token"
    created = client.post("/api/workflows/", yaml.safe_dump(doc), content_type="application/yaml")
    assert created.status_code == 201, created.content
    assert created.json()["deploy"] == client.get(f"/api/workflows/{workflow.pk}/").json()["deploy"]


def test_invalid_yaml_is_a_400(workflow, users):
    response = client_for(users["alice"]).put(
        f"/api/workflows/{workflow.pk}/", "name: [unclosed", content_type="application/yaml"
    )
    assert response.status_code == 400
    assert "YAML parse error" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            lambda d: d["deploy"]["environments"].append({"environment": "qa"}),
            "deploy.environments[3].environment",
            'environment "qa" does not exist in project "demo"',
        ),
        (
            lambda d: d.update(pipeline_type="ci"),
            "deploy.environments",
            "a CI workflow has no deploy; remove the environments or change the pipeline type",
        ),
        (
            lambda d: d["deploy"].update(port=None),
            "deploy.port",
            "an App CD workflow needs the service port",
        ),
        (
            lambda d: d.update(pipeline_type="worker_cd"),
            "deploy.port",
            "a Queues & Workers CD workflow has no service port",
        ),
        (
            lambda d: (
                d.update(pipeline_type="cron_cd"),
                d["deploy"].update(port=None, cron_schedule="61 * * * *"),
            ),
            "deploy.cron_schedule",
            '"61 * * * *" is not a valid cron schedule (five fields: minute hour day month weekday)',
        ),
        (
            lambda d: d["push"].update(registry="nope"),
            "push.registry",
            'registry "nope" does not exist in project "demo"',
        ),
        (
            lambda d: d["push"].update(repository="Bad Name"),
            "push.repository",
            '"Bad Name" is not a valid repository name (lower-case path like team/app)',
        ),
        (
            lambda d: d["push"].update(tag_template="{branch}-{oops}"),
            "push.tag_template",
            "unknown placeholder {oops}; use {branch}, {number}, {sha}, {short_sha}, {timestamp}",
        ),
        (
            lambda d: d["source"]["branches"].append({"pattern": "feat/*", "match": "exact"}),
            "source.branches[2].match",
            'the pattern has wildcards; set match to "wildcard"',
        ),
        (
            lambda d: d["build"].update(dockerfile="../../etc/passwd"),
            "build.dockerfile",
            "must be a path inside the repository",
        ),
        (
            lambda d: d["build"].update(platform="linux/s390x"),
            "build.platform",
            '"linux/s390x" is not a valid choice.',
        ),
        (
            lambda d: d["deploy"]["environments"][2].update(required_approvals=2),
            "deploy.environments[2].required_approvals",
            "2 approvals required but only 1 approver(s) designated",
        ),
        (
            lambda d: d["deploy"]["environments"][1]["approvers"].update(users=["ghost"]),
            "deploy.environments[1].approvers.users",
            'no active user "ghost"',
        ),
        (
            lambda d: d["variables"].append({"key": "SHORT", "value": "ab", "secret": True}),
            "variables[2].value",
            "a secret value needs at least 8 characters to be masked reliably in logs and "
            "messages (this one has 2)",
        ),
        (
            lambda d: d["variables"].append({"key": "1BAD", "value": "x"}),
            "variables[2].key",
            '"1BAD" is not a valid variable name (letters, digits, _; not starting with a digit)',
        ),
        (
            lambda d: d["variables"].append({"key": "API_URL", "value": "x"}),
            "variables[2].key",
            '"API_URL" is defined twice',
        ),
        (
            lambda d: d["scripts"].update(on_failure="x"),
            "scripts.on_failure",
            "unknown hook; use one of pre_build, post_build, post_push, post_deploy",
        ),
        (
            lambda d: d.update(stage_timeout_minutes=0),
            "stage_timeout_minutes",
            "Ensure this value is greater than or equal to 1.",
        ),
        (
            lambda d: d["source"].update(pull_requests=True),
            "source.pull_requests",
            "only CI workflows build pull requests",
        ),
    ],
)
def test_bad_documents_name_the_field(workflow, users, change, field, message):
    client = client_for(users["alice"])
    before = client.get(f"/api/workflows/{workflow.pk}/").json()
    doc = client.get(f"/api/workflows/{workflow.pk}/").json()
    change(doc)
    response = client.put(f"/api/workflows/{workflow.pk}/", doc, format="json")
    errors = errors_of(response)
    assert errors.get(field) == message, errors
    assert f"{field}: {message}" in response.json()["detail"]
    # Nothing half-written.
    assert client.get(f"/api/workflows/{workflow.pk}/").json() == before


def test_inactive_environment_refused_at_save_and_at_run(workflow, environments, users):
    client = client_for(users["alice"])
    prod = environments[2]
    prod.is_active = False
    prod.save()
    doc = client.get(f"/api/workflows/{workflow.pk}/").json()
    errors = errors_of(client.put(f"/api/workflows/{workflow.pk}/", doc, format="json"))
    assert errors == {"deploy.environments[2].environment": 'environment "prod" is inactive'}
    run = client.post(f"/api/workflows/{workflow.pk}/run/", {"ref": "main"}, format="json")
    assert errors_of(run) == {
        "deploy.environments[2].environment": 'environment "prod" is inactive'
    }
    assert workflow.executions.count() == 0


def test_garbage_bodies_are_400_not_500(workflow, users):
    client = client_for(users["alice"])
    for body in (
        [],
        "x",
        42,
        {"name": None},
        {"source": "git"},
        {"deploy": {"environments": "dev"}},
        {"variables": [None]},
        {"layout": {"positions": {"a": {"x": "left"}}}},
    ):
        response = client.put(f"/api/workflows/{workflow.pk}/", body, format="json")
        assert response.status_code == 400, (body, response.content)
    assert client.post("/api/workflows/", {"name": "x"}, format="json").status_code == 400


def test_creating_a_service_creates_its_default_workflow(project, registry, users):
    client = client_for(users["alice"])
    response = client.post(
        "/api/services/",
        {
            "project": project.pk,
            "name": "api",
            "repo_url": "https://git.example.org/api.git",
            "git_username": "ci",
            "git_token": "tok-123456",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert "git_token" not in body and body["has_git_token"] is True
    workflow = client.get(f"/api/workflows/{body['default_workflow']}/").json()
    assert workflow["is_default"] and workflow["pipeline_type"] == "ci"
    assert workflow["push"] == {
        "registry": "local",
        "repository": "demo/api",
        "tag_template": "{short_sha}",
    }


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "file:///etc",
        "/srv/git/repo.git",
        "-uhelp",
        "https://user:pw@git.example.org/x.git",
        "ftp://example.org/x.git",
    ],
)
def test_dangerous_git_urls_are_refused_at_save(project, users, url):
    response = client_for(users["alice"]).post(
        "/api/services/", {"project": project.pk, "name": "evil", "repo_url": url}, format="json"
    )
    errors = errors_of(response)
    assert "repo_url" in errors


def test_kubeconfig_checked_with_the_parsers_reason(project, users):
    client = client_for(users["alice"])
    bad = client.post(
        "/api/environments/",
        {
            "project": project.pk,
            "name": "k8s",
            "target": "kubernetes",
            "kubeconfig": "apiVersion: v1\nclusters: []\ncontexts: []\ncurrent-context: nope\n",
        },
        format="json",
    )
    assert "kubeconfig is invalid" in errors_of(bad)["kubeconfig"]
    not_yaml = client.post(
        "/api/environments/",
        {
            "project": project.pk,
            "name": "k8s",
            "target": "kubernetes",
            "kubeconfig": "a: [b",
        },
        format="json",
    )
    assert "not valid YAML" in errors_of(not_yaml)["kubeconfig"]
    good = client.post(
        "/api/environments/",
        {
            "project": project.pk,
            "name": "k8s",
            "target": "kubernetes",
            "kubeconfig": GOOD_KUBECONFIG,
        },
        format="json",
    )
    assert good.status_code == 201, good.content
    assert "kubeconfig" not in good.json() and good.json()["has_kubeconfig"] is True


def test_registry_credentials_write_only_and_checked(project, users):
    client = client_for(users["alice"])
    missing = client.post(
        "/api/registries/",
        {"project": project.pk, "name": "hub", "provider": "dockerhub"},
        format="json",
    )
    assert errors_of(missing) == {
        "username": "Docker Hub needs the account's username",
        "password": "Docker Hub needs an access token",
    }
    bad_key = client.post(
        "/api/registries/",
        {
            "project": project.pk,
            "name": "gar",
            "provider": "gar",
            "url": "europe-docker.pkg.dev",
            "password": "{}",
        },
        format="json",
    )
    assert errors_of(bad_key) == {"password": 'the JSON key must be of "type": "service_account"'}
    ok = client.post(
        "/api/registries/",
        {
            "project": project.pk,
            "name": "hub",
            "provider": "dockerhub",
            "username": "me",
            "password": "dckr_pat_xyz",
        },
        format="json",
    )
    assert ok.status_code == 201
    assert "dckr_pat_xyz" not in ok.content.decode() and ok.json()["has_password"] is True


def test_openapi_schema_and_swagger_page(users):
    client = client_for(users["carol"])
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/workflows/{id}/run/" in schema.content
    from django.test import Client

    browser = Client()
    browser.force_login(users["carol"])
    assert browser.get("/api/docs/").status_code == 200


GOOD_KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: default}
current-context: ctx
"""


def test_both_platforms_is_a_build_platform(workflow, users):
    client = client_for(users["alice"])
    doc = client.get(f"/api/workflows/{workflow.pk}/").json()
    doc["build"]["platform"] = "linux/amd64,linux/arm64"
    saved = client.put(f"/api/workflows/{workflow.pk}/", doc, format="json")
    assert saved.status_code == 200, saved.content
    assert Workflow.objects.get(pk=workflow.pk).platforms == ["linux/amd64", "linux/arm64"]
    doc["build"]["platform"] = "linux/arm64,linux/s390x"
    errors = errors_of(client.put(f"/api/workflows/{workflow.pk}/", doc, format="json"))
    assert list(errors) == ["build.platform"]
