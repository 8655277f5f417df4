"""The Test buttons not covered elsewhere, on real parts: the tag listing of a pre-built image
service (the open registry on :5000 and the htpasswd one on :5001, an image pushed first) and
the Test of a secret-manager reference (moto's server speaking the AWS API), which says only
the value's length."""

from __future__ import annotations

import boto3
import pytest

from tests import base
from tests.integrations.test_aws import aws_env, moto  # noqa: F401  (fixtures)
from tests.pages.test_setup_pages import HX, client_of, poll
from tests.realparts import BASE_IMAGE, unique_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def push(docker_client, repo: str, tags: tuple[str, ...], auth: dict | None = None) -> None:
    for tag in tags:
        docker_client.api.tag(BASE_IMAGE, repo, tag)
        for chunk in docker_client.api.push(
            repo, tag=tag, stream=True, decode=True, auth_config=auth
        ):
            assert "error" not in chunk, chunk
        docker_client.api.remove_image(f"{repo}:{tag}")


def test_image_tags_of_the_open_registry(users, project, real_services, docker_client):
    repo = f"{real_services['ATMOSLY_TEST_REGISTRY']}/workflows-tests/{unique_name('tags')}"
    push(docker_client, repo, ("v1", "v2"))
    client = client_of(users["bob"])
    url = f"/projects/{project.pk}/services/test/"
    response = client.post(url, {"image": repo}, **HX)
    assert response["HX-Retarget"] == "#id_image_probe"
    html = poll(client, response)
    assert 'data-testid="probe-ok"' in html and "2 tags" in html
    assert "<code>v1</code>" in html and "<code>v2</code>" in html
    missing = poll(client, client.post(url, {"image": f"{repo}-missing"}, **HX))
    assert 'data-testid="probe-error"' in missing


def test_image_tags_of_the_htpasswd_registry_need_its_connection(
    users, project, real_services, docker_client
):
    host = real_services["ATMOSLY_TEST_AUTH_REGISTRY"]
    user = real_services["ATMOSLY_TEST_AUTH_REGISTRY_USER"]
    password = real_services["ATMOSLY_TEST_AUTH_REGISTRY_PASSWORD"]
    repo = f"{host}/workflows-tests/{unique_name('private')}"
    push(docker_client, repo, ("1.0",), auth={"username": user, "password": password})
    client = client_of(users["bob"])
    url = f"/projects/{project.pk}/services/test/"
    anonymous = poll(client, client.post(url, {"image": repo}, **HX))
    assert 'data-testid="probe-error"' in anonymous
    connection = base.make_registry(
        project, name="private", url=host, username=user, password=password
    )
    html = poll(client, client.post(url, {"image": repo, "image_registry": connection.pk}, **HX))
    assert 'data-testid="probe-ok"' in html and "<code>1.0</code>" in html
    assert password not in html and password not in anonymous


@pytest.mark.usefixtures("aws_env")
def test_secret_reference_shows_only_the_length(users, workflow):
    name = unique_name("probe-secret")
    value = '{"token": "held-by-aws-1234", "other": "x"}'
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)
    client = client_of(users["bob"])
    url = f"/workflows/{workflow.pk}/variables/test/"
    whole = poll(client, client.post(url, {"secret_manager": "aws", "secret_ref": name}, **HX))
    assert f"Resolved: a value of {len(value)} characters" in whole and "held-by-aws" not in whole
    response = client.post(url, {"secret_manager": "aws", "secret_ref": f"{name}#token"}, **HX)
    assert response["HX-Retarget"] == "#id_secret_ref_probe"
    key = poll(client, response)
    assert "Resolved: a value of 16 characters" in key and "held-by-aws" not in key
    missing = poll(
        client, client.post(url, {"secret_manager": "aws", "secret_ref": f"{name}-gone"}, **HX)
    )
    assert 'data-testid="probe-error"' in missing and f"{name}-gone" in missing
    refused = client_of(users["carol"]).post(
        url, {"secret_manager": "aws", "secret_ref": name}, **HX
    )
    assert refused.status_code == 403
