"""The Run button: a dialog whose branch/tag picker comes from `git ls-remote` (off the request
thread, polled), and whose submission goes through the API's service function."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from executions.models import Execution
from tests import base
from tests.realparts import sample_app_files, unique_name

pytestmark = pytest.mark.django_db(transaction=True)


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def git_workflow(project, environments, registry, git_server):
    name = unique_name("run")
    git_server.create_repo(name, sample_app_files())
    git_server.commit(name, {"NOTES": "x"}, branch="feature/x")
    service = base.make_service(
        project,
        name="svc",
        repo_url=git_server.repo_url(name),
        git_username=git_server.user,
        git_token=git_server.password,
    )
    return service.workflows.get()


def poll_refs(client, workflow) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        html = client.get(f"/workflows/{workflow.pk}/run/refs/", HTTP_HX_REQUEST="true")
        text = html.content.decode()
        if "Reading branches" not in text:
            return text
        time.sleep(0.2)
    raise AssertionError("ls-remote never finished")


def test_picker_lists_the_repository_branches(users, git_workflow):
    client = client_of(users["bob"])
    dialog = client.get(f"/workflows/{git_workflow.pk}/run/", HTTP_HX_REQUEST="true")
    assert dialog.status_code == 200
    html = dialog.content.decode()
    assert "<dialog" in html and "<html" not in html
    assert f'list="refs-{git_workflow.pk}"' in html
    refs = poll_refs(client, git_workflow)
    assert '<option value="main">branch</option>' in refs
    assert '<option value="feature/x">branch</option>' in refs


def test_wrong_token_shows_the_git_error(users, git_workflow):
    service = git_workflow.service
    service.git_token = "wrong-token"
    service.save()
    refs = poll_refs(client_of(users["bob"]), git_workflow)
    assert 'data-testid="refs-error"' in refs
    assert "Authentication failed" in refs and "wrong-token" not in refs


def test_run_submits_through_the_api_rules(users, git_workflow):
    client = client_of(users["bob"])
    url = f"/workflows/{git_workflow.pk}/run/"
    bad = client.post(url, {"ref": "main", "commit": "xyz"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400
    html = bad.content.decode()
    assert 'data-testid="error-commit"' in html and "7 to 64 hexadecimal digits" in html
    # The API answers the same path and message.
    api = base.client_for(users["bob"]).post(
        f"/api/workflows/{git_workflow.pk}/run/", {"ref": "main", "commit": "xyz"}, format="json"
    )
    assert api.json()["errors"] == [
        {"field": "commit", "message": '"xyz" is not a commit id: 7 to 64 hexadecimal digits'}
    ]
    assert not Execution.objects.exists()
    ok = client.post(url, {"ref": "main", "commit": ""}, HTTP_HX_REQUEST="true")
    execution = Execution.objects.get()
    assert ok.status_code == 200 and ok["HX-Redirect"] == f"/executions/{execution.pk}/"
    assert execution.ref == "main" and execution.triggered_by == users["bob"]
    assert execution.trigger == "manual"


def test_without_javascript_the_run_page_redirects(users, git_workflow):
    client = client_of(users["bob"])
    response = client.post(f"/workflows/{git_workflow.pk}/run/", {"ref": "main"})
    assert response.status_code == 302
    assert response["Location"] == f"/executions/{Execution.objects.get().pk}/"


def test_image_tag_only_for_deploy_only_workflows(users, project, environments, registry):
    service = base.make_service(project, name="img", repo_url="", image="127.0.0.1:5000/a/b:1")
    doc = base.app_cd_document(
        name="default",
        source={"kind": "image", "image": "127.0.0.1:5000/a/b:1", "trigger": "manual"},
    )
    workflow = base.save_document(service, doc, service.workflows.get())
    client = client_of(users["bob"])
    html = client.get(f"/workflows/{workflow.pk}/run/").content.decode()
    assert 'name="image_tag"' in html and 'name="commit"' not in html
    bad = client.post(f"/workflows/{workflow.pk}/run/", {"image_tag": "-bad"})
    assert bad.status_code == 400 and b'data-testid="error-image_tag"' in bad.content
    response = client.post(f"/workflows/{workflow.pk}/run/", {"image_tag": "2.0"})
    assert response.status_code == 302, response.content.decode()
    assert Execution.objects.get().image == "127.0.0.1:5000/a/b:2.0"


@pytest.mark.parametrize("name, status", [("carol", 403), ("dave", 403), ("erin", 404)])
def test_who_may_not_run(users, git_workflow, name, status):
    client = client_of(users[name])
    assert client.get(f"/workflows/{git_workflow.pk}/run/").status_code == status
    assert client.post(f"/workflows/{git_workflow.pk}/run/", {"ref": "main"}).status_code == status
    assert not Execution.objects.exists()


def test_run_button_shown_only_to_who_may_run(users, git_workflow):
    button = f'data-testid="run-{git_workflow.pk}"'
    for page in ("/", f"/workflows/{git_workflow.pk}/"):
        assert button in client_of(users["bob"]).get(page).content.decode()
        assert button not in client_of(users["carol"]).get(page).content.decode()
