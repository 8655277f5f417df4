"""Edit and delete pages of services, registry connections and environments: the API's
permission per role, write-only secrets (blank keeps, never in the HTML), and a delete that
something still needs refused (409) on the page and in the API alike, naming what is in the way."""

from __future__ import annotations

import pytest
from django.test import Client

from executions.models import Execution
from executions.services import do_change_status, do_create_execution
from executions.status import ExecutionStatus as S
from tests import base
from tests.realparts import sample_app_files, unique_name
from workflows.models import Environment, Project, RegistryConnection, Service, Workflow

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HTTP_HX_REQUEST": "true"}
TOKEN = "tok-3f9a1c-never-shown"
PASSWORD = "pw-8d2e77-never-shown"


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def secret_service(project):
    return base.make_service(project, name="api", git_username="ci", git_token=TOKEN)


@pytest.fixture
def secret_registry(project):
    return base.make_registry(project, name="private", username="ci", password=PASSWORD)


def test_service_edit_keeps_a_blank_token_and_never_shows_it(users, project, secret_service):
    client = client_of(users["alice"])
    url = f"/projects/{project.pk}/services/{secret_service.pk}/edit/"
    page = client.get(url).content.decode()
    assert TOKEN not in page and 'value="ci"' in page and "one is set" in page
    response = client.post(
        url,
        {
            "name": "api",
            "repo_url": "https://git.example.org/demo/api2.git",
            "default_branch": "trunk",
            "git_username": "ci",
            "git_token": "",
        },
    )
    assert response.status_code == 302
    secret_service.refresh_from_db()
    assert secret_service.git_token == TOKEN  # blank kept it
    assert (secret_service.repo_url, secret_service.default_branch) == (
        "https://git.example.org/demo/api2.git",
        "trunk",
    )
    bad = client.post(url, {"name": "api", "default_branch": "a..b", "git_token": "typed-x1"})
    assert bad.status_code == 400 and 'data-testid="error-default_branch"' in bad.content.decode()
    assert "typed-x1" not in bad.content.decode()  # not even given back in value=
    secret_service.refresh_from_db()
    assert secret_service.git_token == TOKEN  # nothing half-written
    client.post(url, {"name": "api", "repo_url": secret_service.repo_url, "clear_git_token": "on"})
    secret_service.refresh_from_db()
    assert secret_service.git_token == ""


def test_registry_edit_keeps_a_blank_password_and_never_shows_it(users, project, secret_registry):
    client = client_of(users["alice"])
    url = f"/projects/{project.pk}/registries/{secret_registry.pk}/edit/"
    page = client.get(url).content.decode()
    assert PASSWORD not in page and 'value="127.0.0.1:5000"' in page
    response = client.post(
        url, {"name": "private", "provider": "generic", "url": "127.0.0.1:5001", "username": "ci"}
    )
    assert response.status_code == 302
    secret_registry.refresh_from_db()
    assert (secret_registry.url, secret_registry.password) == ("127.0.0.1:5001", PASSWORD)
    assert not secret_registry.insecure  # an unticked box is a change, as on any HTML form
    bad = client.post(url, {"name": "Not A Name", "provider": "generic", "url": "x"})
    assert bad.status_code == 400 and 'data-testid="error-name"' in bad.content.decode()
    assert PASSWORD not in bad.content.decode()
    assert RegistryConnection.objects.get(pk=secret_registry.pk).name == "private"


@pytest.mark.parametrize(
    ("name", "edit", "delete_service", "delete_registry"),
    [
        ("alice", 200, 200, 200),  # Admin
        ("bob", 200, 403, 200),  # Developer: "Change workflow", not "Delete workflow"
        ("carol", 403, 403, 403),  # Viewer
        ("dave", 403, 403, 403),  # Approver
        ("erin", 404, 404, 404),  # Admin of no project this one
    ],
)
def test_each_role_gets_what_the_api_gives_it(
    users, project, secret_service, secret_registry, name, edit, delete_service, delete_registry
):
    client = client_of(users[name])
    base_url = f"/projects/{project.pk}"
    service_edit = f"{base_url}/services/{secret_service.pk}/edit/"
    assert client.get(service_edit).status_code == edit
    assert client.get(f"{base_url}/registries/{secret_registry.pk}/edit/").status_code == edit
    assert client.get(f"{base_url}/services/{secret_service.pk}/delete/").status_code == (
        delete_service
    )
    registry_delete = f"{base_url}/registries/{secret_registry.pk}/delete/"
    assert client.get(registry_delete).status_code == delete_registry
    if edit == 403:
        refused = client.post(service_edit, {"name": "renamed", "repo_url": "https://x.org/r.git"})
        assert refused.status_code == 403
        assert client.post(registry_delete).status_code == 403
        assert Service.objects.filter(pk=secret_service.pk, name="api").exists()
        assert RegistryConnection.objects.filter(pk=secret_registry.pk).exists()
        # The API refuses the same user the same way.
        api = base.client_for(users[name])
        assert api.delete(f"/api/registries/{secret_registry.pk}/").status_code == 403
    if delete_service == 403 and edit != 404:
        assert client.post(f"{base_url}/services/{secret_service.pk}/delete/").status_code == 403
        api = base.client_for(users[name])
        assert api.delete(f"/api/services/{secret_service.pk}/").status_code == 403
        assert Service.objects.filter(pk=secret_service.pk).exists()
    if edit != 404:
        settings = client.get(f"{base_url}/").content.decode()
        shows = {
            "edit": f'data-testid="service-edit-{secret_service.name}"' in settings,
            "delete service": f'data-testid="service-delete-{secret_service.name}"' in settings,
            "delete registry": 'data-testid="registry-delete-private"' in settings,
        }
        assert shows == {
            "edit": edit == 200,
            "delete service": delete_service == 200,
            "delete registry": delete_registry == 200,
        }
        assert TOKEN not in settings and PASSWORD not in settings


def test_registry_in_use_is_refused_on_the_page_as_in_the_api(users, project, workflow):
    registry = workflow.registry
    client = client_of(users["alice"])
    url = f"/projects/{project.pk}/registries/{registry.pk}/delete/"
    confirm = client.get(url).content.decode()
    assert 'data-testid="delete-confirm"' in confirm and "delete-blocked" not in confirm
    refused = client.post(url)
    html = refused.content.decode()
    assert refused.status_code == 409
    assert "Can't delete:" in html and 'data-testid="delete-blocked"' in html
    name = f"{workflow.service.name}/{workflow.name}"
    assert f'<a href="/workflows/{workflow.pk}/">{name}</a>' in html
    assert RegistryConnection.objects.filter(pk=registry.pk).exists()
    api = base.client_for(users["alice"]).delete(f"/api/registries/{registry.pk}/")
    assert api.status_code == 409
    assert {"type": "workflow", "id": workflow.pk, "name": str(workflow)} in api.json()[
        "blocked_by"
    ]


def test_unused_registry_is_deleted(users, project, secret_registry):
    client = client_of(users["bob"])
    response = client.post(f"/projects/{project.pk}/registries/{secret_registry.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"
    assert not RegistryConnection.objects.filter(pk=secret_registry.pk).exists()


def test_service_with_an_unfinished_run_is_refused_then_deleted_once_it_ended(
    users, project, workflow
):
    service = workflow.service
    run = do_create_execution(workflow, ref="main", trigger="manual", triggered_by=users["alice"])
    client = client_of(users["alice"])
    url = f"/projects/{project.pk}/services/{service.pk}/delete/"
    confirm = client.get(url).content.decode()
    assert f"its {service.workflows.count()} workflow(s)" in confirm and "its 1 run(s)" in confirm
    refused = client.post(url, **HX)
    assert refused.status_code == 409
    html = refused.content.decode()
    assert "Can't delete:" in html
    assert f'<a href="/executions/{run.pk}/">{service.name}/{workflow.name} #{run.number}</a>' in (
        html
    )
    api = base.client_for(users["alice"]).delete(f"/api/services/{service.pk}/")
    assert api.status_code == 409
    assert api.json()["blocked_by"] == [{"type": "execution", "id": run.pk, "name": str(run)}]
    assert Service.objects.filter(pk=service.pk).exists()
    assert Execution.objects.filter(pk=run.pk).exists()

    do_change_status(run, S.TERMINATED, "stopped for the test")
    done = client.post(url, **HX)
    assert done.status_code == 200 and done["HX-Redirect"] == f"/projects/{project.pk}/"
    assert not Service.objects.filter(pk=service.pk).exists()
    assert not Workflow.objects.filter(pk=workflow.pk).exists()
    assert not Execution.objects.filter(pk=run.pk).exists()


def test_environment_a_workflow_deploys_to_is_refused(users, project, workflow):
    dev = Environment.objects.get(project=project, name="dev")
    spare = Environment.objects.create(project=project, name="spare", order=9)
    client = client_of(users["bob"])
    settings = client.get(f"/projects/{project.pk}/").content.decode()
    assert 'data-testid="environment-delete-dev"' in settings
    refused = client.post(f"/projects/{project.pk}/environments/{dev.pk}/delete/")
    assert refused.status_code == 409
    assert f'href="/workflows/{workflow.pk}/"' in refused.content.decode()
    assert Environment.objects.filter(pk=dev.pk).exists()
    assert base.client_for(users["bob"]).delete(f"/api/environments/{dev.pk}/").status_code == 409
    assert client_of(users["carol"]).post(
        f"/projects/{project.pk}/environments/{spare.pk}/delete/"
    ).status_code == (403)
    ok = client.post(f"/projects/{project.pk}/environments/{spare.pk}/delete/")
    assert ok.status_code == 302
    assert not Environment.objects.filter(pk=spare.pk).exists()


def test_test_connection_on_the_edit_page_uses_the_stored_token(users, project, git_server):
    from tests.pages.test_setup_pages import poll

    name = unique_name("edit")
    git_server.create_repo(name, sample_app_files())
    service = base.make_service(
        project,
        name="stored",
        repo_url=git_server.repo_url(name),
        git_username=git_server.user,
        git_token=git_server.password,
    )
    client = client_of(users["alice"])
    form = {"repo_url": git_server.repo_url(name), "git_username": git_server.user}
    test_url = f"/projects/{project.pk}/services/test/"
    without = poll(client, client.post(test_url, form, **HX))
    assert 'data-testid="probe-error"' in without  # no token typed, none looked up
    stored = poll(client, client.post(test_url, {**form, "service": service.pk}, **HX))
    assert 'data-testid="probe-ok"' in stored and "<code>main</code>" in stored
    assert git_server.password not in stored
    # A Viewer cannot borrow the stored token.
    viewer = client_of(users["carol"]).post(test_url, {**form, "service": service.pk}, **HX)
    assert viewer.status_code == 403


@pytest.mark.parametrize(("name", "status"), [("bob", 403), ("carol", 403), ("erin", 404)])
def test_only_a_project_admin_edits_or_deletes_it(users, project, name, status):
    client = client_of(users[name])
    assert client.get(f"/projects/{project.pk}/edit/").status_code == status
    assert client.post(f"/projects/{project.pk}/edit/", {"name": "taken"}).status_code == status
    assert client.post(f"/projects/{project.pk}/delete/").status_code == status
    project.refresh_from_db()
    assert project.name == "demo"
    if status == 403:
        page = client.get(f"/projects/{project.pk}/").content.decode()
        assert "project-edit" not in page and "project-delete" not in page


def test_project_renamed_then_refused_while_a_run_is_unfinished_then_deleted(
    users, project, workflow
):
    client = client_of(users["alice"])
    bad = client.post(f"/projects/{project.pk}/edit/", {"name": "Not Valid"})
    assert bad.status_code == 400 and 'data-testid="error-name"' in bad.content.decode()
    ok = client.post(f"/projects/{project.pk}/edit/", {"name": "shop", "description": "Shop"})
    assert ok.status_code == 302
    project.refresh_from_db()
    assert (project.name, project.description) == ("shop", "Shop")

    run = do_create_execution(workflow, ref="main", trigger="manual", triggered_by=users["alice"])
    refused = client.post(f"/projects/{project.pk}/delete/")
    assert refused.status_code == 409
    assert f'href="/executions/{run.pk}/"' in refused.content.decode()
    assert base.client_for(users["alice"]).delete(f"/api/projects/{project.pk}/").status_code == (
        409
    )
    do_change_status(run, S.TERMINATED, "stopped for the test")
    # Its workflow still pushes to the project's registry and deploys to its environments (the
    # API's PROTECT rule): the page names it; deleting its service first clears the way.
    in_use = client.post(f"/projects/{project.pk}/delete/")
    assert in_use.status_code == 409
    assert f'<a href="/workflows/{workflow.pk}/">web/deliver</a>' in in_use.content.decode()
    service_url = f"/projects/{project.pk}/services/{workflow.service_id}/delete/"
    assert client.post(service_url).status_code == 302
    done = client.post(f"/projects/{project.pk}/delete/")
    assert done.status_code == 302 and done["Location"] == "/"
    assert not Service.objects.filter(pk=workflow.service_id).exists()
    assert not Project.objects.filter(pk=project.pk).exists()


def test_test_login_on_the_edit_page_uses_the_stored_password(users, project, real_services):
    from tests.pages.test_setup_pages import poll

    host = real_services["ATMOSLY_TEST_AUTH_REGISTRY"]
    user = real_services["ATMOSLY_TEST_AUTH_REGISTRY_USER"]
    password = real_services["ATMOSLY_TEST_AUTH_REGISTRY_PASSWORD"]
    registry = base.make_registry(
        project, name="private", url=host, username=user, password=password
    )
    client = client_of(users["alice"])
    form = {"name": "private", "provider": "generic", "url": host, "username": user}
    form["insecure"] = "on"
    test_url = f"/projects/{project.pk}/registries/test/"
    without = poll(client, client.post(test_url, form, **HX))
    assert "give both a username and a password" in without  # none typed, none looked up
    stored = poll(client, client.post(test_url, {**form, "registry": registry.pk}, **HX))
    assert 'data-testid="probe-ok"' in stored and password not in stored
    cleared = {**form, "registry": registry.pk, "clear_password": "on"}
    assert 'data-testid="probe-error"' in poll(client, client.post(test_url, cleared, **HX))


def test_environment_edit_keeps_the_kubeconfig_and_tests_the_new_namespace(users, project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.k8s_double import KubernetesDouble
    from tests.pages.test_setup_pages import poll

    with KubernetesDouble(namespaces=("dev",), forbidden=("prod",)) as double:
        kubeconfig = double.kubeconfig()
        env = Environment.objects.create(
            project=project,
            name="k8s",
            target="kubernetes",
            namespace="prod",
            kubeconfig=kubeconfig,
        )
        client = client_of(users["bob"])
        url = f"/projects/{project.pk}/environments/{env.pk}/edit/"
        page = client.get(url).content.decode()
        assert 'value="prod"' in page and "one is set" in page
        assert double.url not in page  # nothing of the stored kubeconfig is shown
        test_url = f"/projects/{project.pk}/environments/test/"
        form = {"environment": env.pk, "name": "k8s", "target": "kubernetes"}
        forbidden = poll(client, client.post(test_url, {**form, "namespace": "prod"}, **HX))
        assert 'data-testid="probe-error"' in forbidden
        allowed = poll(client, client.post(test_url, {**form, "namespace": "dev"}, **HX))
        assert 'data-testid="probe-ok"' in allowed and "namespace dev" in allowed
        saved = client.post(url, {"name": "k8s", "target": "kubernetes", "namespace": "dev"})
        assert saved.status_code == 302
        env.refresh_from_db()
        assert (env.namespace, env.kubeconfig) == ("dev", kubeconfig)
        bad = SimpleUploadedFile("kubeconfig", b"not: [a kubeconfig")
        refused = client.post(
            url, {"name": "k8s", "target": "kubernetes", "namespace": "dev", "kubeconfig": bad}
        )
        assert refused.status_code == 400 and 'data-testid="error-kubeconfig"' in (
            refused.content.decode()
        )
        env.refresh_from_db()
        assert env.kubeconfig == kubeconfig
    assert client_of(users["carol"]).get(url).status_code == 403


@pytest.mark.parametrize("what", ["service", "project"])
def test_the_admin_refuses_the_same_deletes(users, project, workflow, what):
    # A superuser: others are already refused any delete that takes runs with it (they may
    # not delete runs in the admin).
    alice = users["alice"]
    alice.is_staff = alice.is_superuser = True
    alice.save()
    run = do_create_execution(workflow, ref="main", trigger="manual", triggered_by=alice)
    obj = workflow.service if what == "service" else project
    url = f"/admin/workflows/{what}/{obj.pk}/delete/"
    page = client_of(alice).post(url, {"post": "yes"})
    assert page.status_code == 200 and f"run {run}" in page.content.decode()
    assert type(obj).objects.filter(pk=obj.pk).exists()
    bulk = client_of(alice).post(
        f"/admin/workflows/{what}/",
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert f"run {run}" in bulk.content.decode()
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_a_long_list_of_blockers_is_cut_and_counted(users, project, workflow):
    for i in range(20):
        base.save_document(workflow.service, base.app_cd_document(name=f"copy{i}"))
    refused = client_of(users["alice"]).post(
        f"/projects/{project.pk}/registries/{workflow.registry_id}/delete/"
    )
    html = refused.content.decode()
    assert refused.status_code == 409
    assert html.count('href="/workflows/') == 20 and "and 1 more" in html
