"""Test connection of a Kubernetes environment: the server version, then a
SelfSubjectAccessReview per verb the deploy needs, against the Kubernetes API double (tests/
k8s_double, a double, not Kubernetes: no API server can be installed on this machine)."""

from __future__ import annotations

import json
import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from kubernetes import client

from integrations.kubernetes.target import new_api_client
from tests.k8s_double import KubernetesDouble
from tests.k8s_double.server import SSAR_PATH
from tests.pages.test_setup_pages import HX, client_of, poll
from workflows.models import Environment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def double():
    with KubernetesDouble(namespaces=("dev",), forbidden=("prod",)) as running:
        yield running


def upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("kubeconfig", text.encode(), content_type="application/yaml")


def reviews(double) -> list[dict]:
    return [r for r in double.requests if r["method"] == "POST" and r["path"] == SSAR_PATH]


def test_uploaded_kubeconfig_may_apply_deployments(users, project, double):
    client = client_of(users["bob"])
    url = f"/projects/{project.pk}/environments/test/"
    response = client.post(
        url, {"namespace": "dev", "kubeconfig": upload(double.kubeconfig())}, **HX
    )
    assert response["HX-Retarget"] == "#id_kubeconfig_probe"
    html = poll(client, response)
    assert 'data-testid="probe-ok"' in html
    assert f"Kubernetes v1.37.0-double at {double.url}: may apply Deployments" in html
    assert "namespace dev" in html
    assert "create deployments.apps: allowed" in html and "patch deployments.apps" in html
    assert len(reviews(double)) == 2
    assert any(r["path"].startswith("/version") for r in double.requests)


def test_saved_environment_in_a_forbidden_namespace_says_which_verbs(users, project, double):
    client = client_of(users["bob"])
    url = f"/projects/{project.pk}/environments/"
    form = {"name": "prod", "target": "kubernetes", "namespace": "prod"}
    added = client.post(url, {**form, "kubeconfig": upload(double.kubeconfig())}, **HX)
    assert added.status_code == 200
    prod = Environment.objects.get(project=project, name="prod")
    assert f'data-testid="environment-test-{prod.name}"' in added.content.decode()
    response = client.post(url + "test/", {"environment": prod.pk}, **HX)
    assert response["HX-Retarget"] == f"#id_environment{prod.pk}_probe"
    html = poll(client, response)
    assert 'data-testid="probe-error"' in html
    assert (
        f"Kubernetes v1.37.0-double at {double.url} answered, but these credentials may not"
        " create, patch deployments.apps in namespace &quot;prod&quot;"
    ) in html
    assert double.token not in html


def test_wrong_token_unreachable_and_broken_kubeconfig_show_the_error(users, project, double):
    client = client_of(users["bob"])
    url = f"/projects/{project.pk}/environments/test/"

    def tested(kubeconfig: str) -> str:
        return poll(
            client, client.post(url, {"namespace": "dev", "kubeconfig": upload(kubeconfig)}, **HX)
        )

    wrong = tested(double.kubeconfig(token="not-the-token"))
    assert f"the Kubernetes API at {double.url} refused to read the server version" in wrong
    assert "Unauthorized" in wrong and "not-the-token" not in wrong
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = tested(double.kubeconfig().replace(double.url, f"http://127.0.0.1:{port}"))
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in unreachable
    broken = tested("clusters: [")
    assert "the kubeconfig cannot be used" in broken
    missing = client.post(url, {"namespace": "dev"}, **HX).content.decode()
    assert "choose a kubeconfig file to test" in missing


def test_only_who_may_change_environments_tests_them(users, project, double):
    url = f"/projects/{project.pk}/environments/test/"
    viewer = client_of(users["carol"])
    response = viewer.post(url, {"kubeconfig": upload(double.kubeconfig())}, **HX)
    assert response.status_code == 403
    assert client_of(users["erin"]).post(url, {}, **HX).status_code == 404
    assert not reviews(double)


def test_the_double_reviews_access_like_rbac(double):
    """The double's answer: allowed outside forbidden namespaces, denied with no reason in
    them, the namespace's existence not checked, a review without attributes refused."""
    api = client.AuthorizationV1Api(new_api_client(double.kubeconfig()))

    def allowed(namespace: str) -> bool:
        attributes = client.V1ResourceAttributes(
            namespace=namespace, verb="patch", group="apps", resource="deployments"
        )
        spec = client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
        review = client.V1SelfSubjectAccessReview(spec=spec)
        status = api.create_self_subject_access_review(review).status
        return status.allowed

    assert allowed("dev") and allowed("not-created-yet") and not allowed("prod")
    with pytest.raises(client.ApiException) as refused:
        api.create_self_subject_access_review(
            client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec())
        )
    assert refused.value.status == 422
    assert "exactly one of" in json.loads(refused.value.body)["message"]
