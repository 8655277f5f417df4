"""Set-up pages: projects, members, services, environments, registries and variables, each
through the API's rules (the same permission and the same field paths and messages)."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from tests import base
from tests.realparts import sample_app_files, unique_name
from workflows.models import CIVariable, Environment, Project, RegistryConnection, Service

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HTTP_HX_REQUEST": "true"}


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def poll(client, response) -> str:
    """Follows a probe partial's polling until it shows a result."""
    html = response.content.decode()
    deadline = time.monotonic() + 30
    while 'hx-trigger="load delay:500ms"' in html and time.monotonic() < deadline:
        url = html.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        time.sleep(0.2)
        html = client.get(url, **HX).content.decode()
    return html


def test_admin_creates_a_project_and_is_its_member(users):
    client = client_of(users["alice"])
    bad = client.post("/projects/new/", {"name": "Bad Name!"})
    assert bad.status_code == 400 and b'data-testid="error-name"' in bad.content
    response = client.post("/projects/new/", {"name": "payments"})
    project = Project.objects.get(name="payments")
    assert response["Location"] == f"/projects/{project.pk}/"
    assert list(project.members.all()) == [users["alice"]]


@pytest.mark.parametrize("name", ["bob", "carol", "dave"])
def test_only_who_may_add_projects_creates_them(users, name):
    assert client_of(users[name]).post("/projects/new/", {"name": "x"}).status_code == 403
    assert not Project.objects.filter(name="x").exists()


def test_members_added_with_a_role_by_the_project_admin(users, project):
    from django.contrib.auth.models import User

    newcomer = User.objects.create_user("gina", "g@example.org", "pw")
    client = client_of(users["alice"])
    response = client.post(
        f"/projects/{project.pk}/members/", {"username": "gina", "role": "Approver"}, **HX
    )
    assert response.status_code == 200 and b"<html" not in response.content
    assert project.members.filter(username="gina").exists()
    assert newcomer.groups.filter(name="Approver").exists()
    missing = client.post(f"/projects/{project.pk}/members/", {"username": "nobody"}, **HX)
    assert missing.status_code == 400
    assert b"no active user named &quot;nobody&quot;" in missing.content
    client.post(f"/projects/{project.pk}/members/", {"remove": "gina"}, **HX)
    assert not project.members.filter(username="gina").exists()


def test_members_api_and_page_share_the_rule(users, project):
    # bob (Developer) is a member but does not administer the project; erin (Admin) is not a
    # member: neither may change members, on the page or in the API.
    for name, page_status in (("bob", 403), ("carol", 403), ("erin", 404)):
        client = client_of(users[name])
        url = f"/projects/{project.pk}/members/"
        page = client.post(url, {"username": "frank", "role": "Admin"})
        assert page.status_code == page_status
        api = base.client_for(users[name]).post(
            f"/api/projects/{project.pk}/members/", {"username": "frank", "role": "Admin"}
        )
        assert api.status_code == page_status
    assert not users["frank"].groups.exists()


def test_nobody_gives_a_role_with_more_than_they_hold(users, project):
    powerful = Group.objects.create(name="Superpowers")
    from django.contrib.auth.models import Permission

    powerful.permissions.add(Permission.objects.get(codename="delete_user"))
    response = client_of(users["alice"]).post(
        f"/projects/{project.pk}/members/", {"username": "frank", "role": "Superpowers"}
    )
    assert response.status_code == 400
    assert not users["frank"].groups.exists()


def test_service_from_git_lands_on_its_default_workflow(users, project, git_server):
    name = unique_name("svc")
    git_server.create_repo(name, sample_app_files())
    client = client_of(users["bob"])
    test = client.post(
        f"/projects/{project.pk}/services/test/",
        {"repo_url": git_server.repo_url(name), "git_username": "git", "git_token": "wrong"},
        **HX,
    )
    assert test["HX-Retarget"] == "#id_repo_url_probe"
    html = poll(client, test)
    assert 'data-testid="probe-error"' in html and "Authentication failed" in html
    assert "wrong" not in html.replace("wrong-", "")
    ok = poll(
        client,
        client.post(
            f"/projects/{project.pk}/services/test/",
            {
                "repo_url": git_server.repo_url(name),
                "git_username": git_server.user,
                "git_token": git_server.password,
            },
            **HX,
        ),
    )
    assert 'data-testid="probe-ok"' in ok and "<code>main</code>" in ok
    response = client.post(
        f"/projects/{project.pk}/services/new/",
        {
            "name": "api",
            "repo_url": git_server.repo_url(name),
            "default_branch": "main",
            "git_username": git_server.user,
            "git_token": git_server.password,
        },
    )
    service = Service.objects.get(name="api")
    workflow = service.workflows.get(is_default=True)
    assert response["Location"] == f"/workflows/{workflow.pk}/"
    assert service.git_token == git_server.password
    page = client.get(f"/projects/{project.pk}/services/new/").content.decode()
    assert git_server.password not in client.get(f"/projects/{project.pk}/").content.decode()
    assert 'type="password"' in page


def test_service_errors_use_the_api_paths(users, project):
    client = client_of(users["bob"])
    response = client.post(f"/projects/{project.pk}/services/new/", {"name": "web2"})
    assert response.status_code == 400
    assert b'data-testid="error-repo_url"' in response.content
    assert not Service.objects.filter(name="web2").exists()
    assert (
        client_of(users["carol"])
        .post(f"/projects/{project.pk}/services/new/", {"name": "x", "repo_url": "https://a/b.git"})
        .status_code
        == 403
    )


def test_environments_add_rename_reorder_deactivate(users, project):
    client = client_of(users["bob"])
    url = f"/projects/{project.pk}/environments/"
    for name in ("dev", "staging", "prod"):
        assert client.post(url, {"name": name, "target": "local"}, **HX).status_code == 200
    assert [e.name for e in project.environments.order_by("order")] == ["dev", "staging", "prod"]
    kube = client.post(url, {"name": "k8s", "target": "kubernetes"}, **HX)
    assert kube.status_code == 400 and b'data-testid="error-kubeconfig"' in kube.content
    prod = Environment.objects.get(name="prod")
    client.post(f"{url}{prod.pk}/", {"action": "up"}, **HX)
    assert [e.name for e in project.environments.order_by("order")] == ["dev", "prod", "staging"]
    client.post(f"{url}{prod.pk}/", {"action": "rename", "name": "production"}, **HX)
    client.post(f"{url}{prod.pk}/", {"action": "deactivate"}, **HX)
    prod.refresh_from_db()
    assert prod.name == "production" and not prod.is_active
    clash = client.post(f"{url}{prod.pk}/", {"action": "rename", "name": "dev"}, **HX)
    assert clash.status_code == 400 and b"already exists in this project" in clash.content
    assert client_of(users["carol"]).post(url, {"name": "qa", "target": "local"}).status_code == 403


def test_registry_test_login_is_the_real_login(users, project, real_services):
    client = client_of(users["bob"])
    url = f"/projects/{project.pk}/registries/"
    host = real_services["ATMOSLY_TEST_AUTH_REGISTRY"]
    form = {"provider": "generic", "url": host, "insecure": "on", "name": "auth"}
    wrong = poll(client, client.post(url + "test/", {**form, "username": "u", "password": "x"}))
    assert "refused the credentials" in wrong
    user = real_services["ATMOSLY_TEST_AUTH_REGISTRY_USER"]
    password = real_services["ATMOSLY_TEST_AUTH_REGISTRY_PASSWORD"]
    right = {**form, "username": user, "password": password}
    ok = poll(client, client.post(url + "test/", right, **HX))
    assert f"Logged in to {host} as {user}" in ok
    assert client.post(url, right, **HX).status_code == 200
    registry = RegistryConnection.objects.get(name="auth")
    assert registry.password == password
    assert password not in client.get(f"/projects/{project.pk}/").content.decode()


def test_variables_secret_never_shown_again(users, workflow):
    client = client_of(users["bob"])
    url = f"/workflows/{workflow.pk}/variables/"
    client.post(
        url,
        {"key": "DB_PASSWORD", "value": "hunter2-xyz", "secret": "on", "scope": "runtime"},
        **HX,
    )
    variable = CIVariable.objects.get(workflow=workflow, key="DB_PASSWORD")
    assert variable.is_secret and variable.secret_value == "hunter2-xyz"
    assert "hunter2-xyz" not in client.get(url).content.decode()
    bad = client.post(url, {"key": "1BAD", "value": "x", "scope": "build"}, **HX)
    assert bad.status_code == 400 and b'data-testid="error-key"' in bad.content
    assert b"variables[" in bad.content  # the API's path, next to the field
    export = client.get(url + "export/").content.decode()
    assert 'API_URL="https://api.example.org"' in export
    assert "NPM_TOKEN" not in export and "DB_PASSWORD" not in export
    from django.core.files.uploadedfile import SimpleUploadedFile

    env = SimpleUploadedFile(".env", b"FROM_FILE=one\n# comment\nOTHER='two words'\n")
    client.post(url + "import/", {"env_file": env}, **HX)
    values = dict(workflow.variables.values_list("key", "value"))
    assert values["FROM_FILE"] == "one" and values["OTHER"] == "two words"
    assert client_of(users["carol"]).post(url, {"key": "X", "value": "1"}).status_code == 403


@pytest.mark.parametrize(
    ("content", "error"),
    [
        # The document refuses the key of the file's third line (it is its fourth variable).
        (b"GOOD=1\n# a comment\n1BAD=x\n", "variables.env: line 3: key: "),
        # python-dotenv alone would log and skip the line, importing the rest.
        (b"GOOD=1\n\nnot a variable\nX=2\n", "variables.env: line 3: not KEY=value"),
    ],
    ids=["refused-key", "unreadable-line"],
)
def test_env_import_errors_name_the_files_line(users, workflow, content, error):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = f"/workflows/{workflow.pk}/variables/import/"
    upload = SimpleUploadedFile("variables.env", content)
    answer = client_of(users["bob"]).post(url, {"env_file": upload}, **HX)
    assert answer.status_code == 400
    assert error in answer.content.decode()
    assert b"variables[" not in answer.content  # not the document's index
    assert not workflow.variables.filter(key__in=["GOOD", "X"]).exists()  # all or nothing


@pytest.mark.parametrize("name", ["carol"])
def test_viewer_sees_the_project_without_forms(users, project, name):
    html = client_of(users[name]).get(f"/projects/{project.pk}/").content.decode()
    assert "Members" in html and "Add a member" not in html
    assert "Add environment" not in html and "Add registry" not in html


def test_strangers_get_404(users, project):
    assert client_of(users["erin"]).get(f"/projects/{project.pk}/").status_code == 404
