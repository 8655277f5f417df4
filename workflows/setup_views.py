"""Set-up pages: projects, members, services, environments, registries and CI variables.

Each change goes through the API's serializer and service function, with the API's permission
rule, so a page can do exactly what the API lets the same user do, and says why not in the
API's words (field path and message, next to the field).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import ProtectedError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, retarget
from dotenv import dotenv_values
from dotenv.parser import parse_stream
from rest_framework.exceptions import ValidationError as DRFValidationError

from atmosly.api_errors import MAX_BLOCKERS_LISTED
from atmosly.errors import Invalid
from atmosly.forms import add_api_errors
from atmosly.htmx import htmx_partial, render_page_or_partial
from atmosly.probes import probe_result, start_probe
from executions.models import Execution
from integrations.kubernetes.check import check_cluster
from integrations.registries import validate_registry_settings
from workflows import probes
from workflows.document import workflow_document
from workflows.forms import (
    EnvFileForm,
    EnvironmentEditForm,
    EnvironmentForm,
    MemberForm,
    ProjectForm,
    RegistryEditForm,
    RegistryForm,
    ServiceEditForm,
    ServiceForm,
    VariableForm,
)
from workflows.models import (
    Environment,
    Project,
    RegistryConnection,
    Service,
    Workflow,
    WorkflowEnvironment,
)
from workflows.permissions import (
    ADD,
    CHANGE,
    CHANGE_PROJECT,
    DELETE,
    VIEW,
    administers,
    visible_projects,
)
from workflows.serializers import (
    EnvironmentSerializer,
    RegistryConnectionSerializer,
    ServiceSerializer,
)
from workflows.services import (
    check_add_member,
    check_create_project,
    check_remove_member,
    check_save_workflow,
    do_create_service,
    do_delete_environment,
    do_delete_project,
    do_delete_registry,
    do_delete_service,
    do_update_object,
    do_update_project,
    grantable_roles,
    require_project_perm,
)

if TYPE_CHECKING:
    from rest_framework.serializers import ModelSerializer

# The service functions' Invalid, and the serializers' own ValidationError where a page
# validates with one directly. Their PermissionDenied (Django's) is the page's 403 with its
# message (templates/403.html).
API_ERRORS = (Invalid, DRFValidationError)
DELETE_PROJECT = "workflows.delete_project"


def project_for(user, pk: int) -> Project:
    if not user.has_perm(VIEW):
        raise PermissionDenied
    return get_object_or_404(visible_projects(user), pk=pk)


def require(user, perm: str) -> None:
    if not user.has_perm(perm):
        raise PermissionDenied


def go(request, url: str):
    """After a change: the whole page follows the browser there, with or without HTMX."""
    return HttpResponseClientRedirect(url) if htmx_partial(request) else redirect(url)


def form_data(request, form) -> dict:
    return {name: request.POST.get(name, "") for name in form.fields}


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request):
    """Create a project (needs "Can add project"); its creator becomes its first member."""
    require(request.user, "workflows.add_project")
    form = ProjectForm(request.POST or None)
    if request.method == "POST":
        try:
            project = check_create_project(request.user, form_data(request, form))
        except API_ERRORS as exc:
            add_api_errors(form, exc)
        else:
            return go(request, reverse("ui-project-settings", args=[project.pk]))
    status = 400 if form.errors else 200
    return render(request, "workflows/project_new.html", {"form": form}, status=status)


def settings_context(request, project: Project, **forms) -> dict:
    user = request.user
    return {
        "project": project,
        "can_administer": administers(user, project),
        "can_change": user.has_perm(CHANGE),
        "can_add": user.has_perm(ADD),
        "can_delete": user.has_perm(DELETE),
        "can_delete_project": user.has_perm(DELETE_PROJECT),
        "members": project.members.prefetch_related("groups").order_by("username"),
        "environments": project.environments.all(),
        "registries": project.registries.all(),
        "services": project.services.prefetch_related("workflows"),
        "member_form": forms.get("member_form") or MemberForm(roles=grantable_roles(user)),
        "environment_form": forms.get("environment_form") or EnvironmentForm(),
        "registry_form": forms.get("registry_form") or RegistryForm(),
    }


@login_required
@require_GET
def project_settings(request, pk: int):
    """A project's members, services, environments and registries; forms for who may change."""
    project = project_for(request.user, pk)
    return render(request, "workflows/project.html", settings_context(request, project))


@login_required
@require_POST
def project_members(request, pk: int):
    """POST `username` + `role` adds a member; `remove=<username>` removes one."""
    project = project_for(request.user, pk)
    form: MemberForm | None = MemberForm(request.POST, roles=grantable_roles(request.user))
    try:
        if request.POST.get("remove"):
            check_remove_member(request.user, project, request.POST["remove"])
        else:
            check_add_member(request.user, project, **form_data(request, form))
            form = None
    except API_ERRORS as exc:
        assert form is not None  # it is dropped only after the last call that raises
        add_api_errors(form, exc)
    context = settings_context(request, project, member_form=form)
    return section(request, "members", context, bool(form and form.errors))


def section(request, name: str, context: dict, failed: bool) -> HttpResponse:
    status = 400 if failed else 200
    return render_page_or_partial(
        request, "workflows/project.html", f"workflows/htmx/_{name}.html", context, status
    )


@login_required
@require_http_methods(["GET", "POST"])
def service_new(request, pk: int):
    """Add a service (needs "Add workflow", as `POST /api/services/`); it lands on its default
    workflow's page."""
    project = project_for(request.user, pk)
    require(request.user, ADD)
    form = ServiceForm(request.POST or None, project=project)
    if request.method == "POST":
        data = {**form_data(request, form), "project": project.pk}
        data["image_registry"] = data["image_registry"] or None
        if not data["default_branch"]:
            del data["default_branch"]  # the API's default (main), as when a client omits it
        serializer = ServiceSerializer(data=data, context={"request": request})
        try:
            serializer.is_valid(raise_exception=True)
            service = do_create_service(Service(**serializer.validated_data))
        except API_ERRORS as exc:
            add_api_errors(form, exc)
        else:
            workflow = service.workflows.get(is_default=True)
            return go(request, reverse("workflow-page", args=[workflow.pk]))
    status = 400 if form.errors else 200
    context = {"project": project, "form": form}
    return render(request, "workflows/service_new.html", context, status=status)


@login_required
@require_POST
def service_test(request, pk: int):
    """Test connection for the service form: `git ls-remote` with the typed credentials, or
    the tags of the pre-built image; runs as a probe and answers a polling partial. With
    `service=<id>` (the edit page, "Change workflow") a blank token or key is the stored one."""
    project = project_for(request.user, pk)
    require(request.user, ADD)
    post = request.POST
    if post.get("repo_url"):
        token, ssh_key = post.get("git_token", ""), post.get("git_ssh_key", "")
        if post.get("service"):  # the edit page: a blank secret means the stored one
            saved = get_object_or_404(Service, pk=post["service"], project=project)
            require(request.user, CHANGE)
            token = token or ("" if post.get("clear_git_token") else saved.git_token)
            ssh_key = ssh_key or ("" if post.get("clear_git_ssh_key") else saved.git_ssh_key)
        probe_id = start_probe(
            probes.git_refs,
            post["repo_url"].strip(),
            post.get("git_username", ""),
            token,
            ssh_key,
            owner=request.user.pk,
        )
        field = "repo_url"
    elif post.get("image"):
        registry_id = post.get("image_registry")
        registry = project.registries.filter(pk=registry_id).first() if registry_id else None
        probe_id = start_probe(
            probes.image_tags,
            post["image"].strip(),
            probes.connection_settings(registry),
            owner=request.user.pk,
        )
        field = "image"
    else:
        return render_probe(request, None, "repo_url", "give a Git repository URL or an image")
    return render_probe(request, probe_id, field)


def render_probe(
    request, probe_id, field: str, error: str = "", *, polled: bool = False
) -> HttpResponse:
    result = probe_result(probe_id, request.user.pk) if probe_id else None
    if error:
        result = {"state": "done", "ok": False, "error": error}
    context = {"probe_id": probe_id, "result": result, "field": field}
    response = render(request, "workflows/htmx/_probe.html", context)
    # The result shows next to the field it is about, wherever the button sits.
    # (Polls replace their own placeholder inside it.)
    return retarget(response, f"#id_{field}_probe") if field and not polled else response


@login_required
@require_GET
def probe(request, probe_id: str):
    """Polled by a probe partial until its check is done; only who started it may read it."""
    if probe_result(probe_id, request.user.pk) is None:
        raise Http404
    return render_probe(request, probe_id, request.GET.get("field", ""), polled=True)


@login_required
@require_POST
def environment_add(request, pk: int):
    """Adds an environment at the end of the order (needs "Change workflow", as the API)."""
    project = project_for(request.user, pk)
    require(request.user, CHANGE)
    form: EnvironmentForm | None = EnvironmentForm(request.POST, request.FILES)
    data = form_data(request, form)
    data.pop("kubeconfig")
    kubeconfig = uploaded_kubeconfig(request)
    if kubeconfig:
        data["kubeconfig"] = kubeconfig
    last = project.environments.order_by("-order").first()
    data.update(project=project.pk, order=(last.order + 1) if last else 0)
    data["namespace"] = data["namespace"] or "default"
    if save_serializer(request, EnvironmentSerializer, data, form):
        form = None
    context = settings_context(request, project, environment_form=form)
    return section(request, "environments", context, bool(form and form.errors))


KUBECONFIG_MAX = 1024 * 1024  # bytes read from an uploaded kubeconfig


def uploaded_kubeconfig(request) -> str:
    upload = request.FILES.get("kubeconfig")
    return upload.read(KUBECONFIG_MAX).decode("utf-8", errors="replace") if upload else ""


@login_required
@require_POST
def environment_test(request, pk: int):
    """Test connection of a Kubernetes target, as a probe: the server version, then a
    SelfSubjectAccessReview per verb the deploy needs (create, patch) on Deployments in the
    namespace (integrations/kubernetes/check.py). With `environment=<id>` it tests that saved
    environment: its stored kubeconfig unless a new one is uploaded, in the posted `namespace`
    if any (the edit page); otherwise the add form's upload and `namespace`."""
    project = project_for(request.user, pk)
    require(request.user, CHANGE)
    saved = request.POST.get("environment")
    if saved:
        environment = get_object_or_404(Environment, pk=saved, project=project)
        # The edit page sends its form: its namespace, and a new kubeconfig if one is chosen.
        field = "kubeconfig" if "namespace" in request.POST else f"environment{environment.pk}"
        upload = uploaded_kubeconfig(request)
        namespace = request.POST.get("namespace", "").strip() or environment.namespace
        if (request.POST.get("target") or environment.target) != "kubernetes":
            return render_probe(request, None, field, "the local engine needs no test")
        # Plain values: the probe thread does not touch the database.
        args = (upload or environment.kubeconfig, namespace, environment.in_cluster and not upload)
    else:
        field = "kubeconfig"
        kubeconfig = uploaded_kubeconfig(request)
        if not kubeconfig:
            return render_probe(request, None, field, "choose a kubeconfig file to test")
        args = (kubeconfig, request.POST.get("namespace", "").strip() or "default", False)
    probe_id = start_probe(check_cluster, *args, owner=request.user.pk)
    return render_probe(request, probe_id, field)


def save_serializer(request, serializer_class, data, form, instance=None) -> bool:
    """The API's `serializer.save()` for the same data; errors go onto `form`."""
    serializer = serializer_class(
        instance, data=data, partial=instance is not None, context={"request": request}
    )
    try:
        serializer.is_valid(raise_exception=True)
    except DRFValidationError as exc:
        add_api_errors(form, exc)
        return False
    serializer.save()
    return True


@login_required
@require_POST
def environment_change(request, pk: int, env_pk: int):
    """`action` = rename (with `name`), up, down, deactivate or activate."""
    project = project_for(request.user, pk)
    require(request.user, CHANGE)
    environment = get_object_or_404(Environment, pk=env_pk, project=project)
    action = request.POST.get("action")
    form = EnvironmentForm()
    if action in ("up", "down"):
        move_environment(request, project, environment, -1 if action == "up" else 1)
    elif action in ("deactivate", "activate"):
        data = {"is_active": action == "activate"}
        save_serializer(request, EnvironmentSerializer, data, form, environment)
    elif action == "rename":
        data = {"name": request.POST.get("name", "")}
        save_serializer(request, EnvironmentSerializer, data, form, environment)
    context = settings_context(request, project, environment_form=form)
    context["environment_errors"] = {
        environment.pk: form.errors.get("name") or form.non_field_errors()
    }
    return section(request, "environments", context, bool(form.errors))


def move_environment(request, project: Project, environment: Environment, step: int) -> None:
    """Swaps places with the neighbour, renumbering 0..n-1, each through the serializer."""
    ordered = list(project.environments.order_by("order", "name"))
    index = ordered.index(environment)
    other = index + step
    if not 0 <= other < len(ordered):
        return
    ordered[index], ordered[other] = ordered[other], ordered[index]
    for position, env in enumerate(ordered):
        if env.order != position:
            save_serializer(
                request, EnvironmentSerializer, {"order": position}, EnvironmentForm(), env
            )


@login_required
@require_POST
def registry_add(request, pk: int):
    project = project_for(request.user, pk)
    require(request.user, CHANGE)
    form: RegistryForm | None = RegistryForm(request.POST)
    data = {**form_data(request, form), "project": project.pk}
    data["insecure"] = bool(request.POST.get("insecure"))
    if save_serializer(request, RegistryConnectionSerializer, data, form):
        form = None
    context = settings_context(request, project, registry_form=form)
    return section(request, "registries", context, bool(form and form.errors))


@login_required
@require_POST
def registry_test(request, pk: int):
    """Test login with the form's settings (the real login: provider token, then the
    registry's v2 auth handshake), as a probe. With `registry=<id>` (the edit page) a blank
    password is the stored one."""
    project = project_for(request.user, pk)
    require(request.user, CHANGE)
    form = RegistryForm(request.POST)
    settings = {**form_data(request, form), "insecure": bool(request.POST.get("insecure"))}
    if request.POST.get("registry") and not request.POST.get("clear_password"):
        # The edit page: a blank password means the stored one.
        saved = get_object_or_404(RegistryConnection, pk=request.POST["registry"], project=project)
        settings["password"] = settings["password"] or saved.password
    errors = validate_registry_settings(settings)  # the serializer's own check
    if errors:
        message = "; ".join(f"{field}: {text}" for field, text in errors.items())
        return render_probe(request, None, "password", message)
    probe_id = start_probe(probes.registry_login, settings, owner=request.user.pk)
    return render_probe(request, probe_id, "password")


def workflow_for_change(request, pk: int) -> Workflow:
    workflow = get_object_or_404(
        Workflow.objects.filter(service__project__in=visible_projects(request.user)), pk=pk
    )
    require(request.user, VIEW)
    return workflow


def variables_context(request, workflow: Workflow, form=None, import_form=None) -> dict:
    return {
        "workflow": workflow,
        "variables": workflow.variables.all(),
        "can_change": request.user.has_perm(CHANGE),
        "form": form or VariableForm(),
        "import_form": import_form or EnvFileForm(),
    }


@login_required
@require_http_methods(["GET", "POST"])
def workflow_variables(request, pk: int):
    """CI variables of a workflow. POST adds or replaces one (`key`, `value`, `secret`, `scope`,
    `secret_manager`, `secret_ref`) or removes one (`remove=<key>`), as a PATCH of the
    workflow document's `variables` through `check_save_workflow`; secrets never come back."""
    workflow = workflow_for_change(request, pk)
    form: VariableForm | None = VariableForm(request.POST or None)
    if request.method == "POST":
        require(request.user, CHANGE)
        current = [v for v in workflow_document(workflow)["variables"]]
        if request.POST.get("remove"):
            current = [v for v in current if v["key"] != request.POST["remove"]]
            new = None
        else:
            new = form_data(request, form)
            new["secret"] = bool(request.POST.get("secret"))
            current = [v for v in current if v["key"] != new["key"]] + [new]
        try:
            check_save_workflow(
                request.user, workflow.service, {"variables": current}, workflow, partial=True
            )
        except API_ERRORS as exc:
            add_api_errors(ItemErrors(form, f"variables[{len(current) - 1}]."), exc)
        else:
            form = None
    context = variables_context(request, workflow, form)
    return render_page_or_partial(
        request,
        "workflows/variables.html",
        "workflows/htmx/_variables.html",
        context,
        400 if form is not None and form.errors else 200,
    )


class ItemErrors:
    """Lets `add_api_errors` put `variables[3].value` on the form's `value` field: the path
    the API answers, shown next to the field it names."""

    def __init__(self, form, prefix: str):
        self.form, self.prefix = form, prefix
        self.fields = {f"{prefix}{name}": name for name in form.fields}

    def add_error(self, field, message) -> None:
        self.form.add_error(self.fields.get(field), f"{field}: {message}" if field else message)


def read_env_file(
    text: str, filename: str
) -> tuple[dict[str, str | None], dict[str, int], list[str]]:
    """A `.env` file in python-dotenv's syntax: its values (interpolated, the last of a key
    wins), the line each key was read from, and `<file>: line <n>: ...` for every line that is
    not `KEY=value`, a comment or blank (python-dotenv itself only logs and skips those)."""
    lines: dict[str, int] = {}
    unreadable = []
    for binding in parse_stream(io.StringIO(text)):
        # A statement's text starts with the blank lines before it; its line is their first.
        string = binding.original.string
        line = binding.original.line + string[: len(string) - len(string.lstrip())].count("\n")
        if binding.error:
            unreadable.append(f"{filename}: line {line}: not KEY=value, a comment or blank")
        elif binding.key is not None:
            lines[binding.key] = line
    return dotenv_values(stream=io.StringIO(text)), lines, unreadable


VARIABLE_PATH = re.compile(r"variables\[(\d+)\]\.?(.*)")


def env_file_errors(
    errors: list[dict[str, str]], keys: list[str], lines: dict[str, int], filename: str
) -> list[dict[str, str]]:
    """The document's errors on `variables[i]...` (i indexes `keys`) of a variable the file
    set, as `<file>: line <n>: <field>: <message>` on the file's field; others unchanged."""
    out = []
    for error in errors:
        match = VARIABLE_PATH.fullmatch(error["field"])
        key = keys[int(match[1])] if match and int(match[1]) < len(keys) else None
        if match and key in lines:
            where = f"{filename}: line {lines[key]}: " + (f"{match[2]}: " if match[2] else "")
            error = {"field": "env_file", "message": where + error["message"]}
        out.append(error)
    return out


@login_required
@require_POST
def variables_import(request, pk: int):
    """Imports a `.env` file (python-dotenv's syntax) into the workflow's variables, plain or
    all secret; an existing key is replaced. One document save: all or nothing. A line that
    cannot be read, or a variable the document refuses, is a 400 naming the file's line."""
    workflow = workflow_for_change(request, pk)
    require(request.user, CHANGE)
    import_form = EnvFileForm(request.POST, request.FILES)
    upload = request.FILES.get("env_file")
    if upload is None:
        import_form.add_error("env_file", "choose a .env file")
    else:
        text = upload.read(256 * 1024).decode("utf-8", errors="replace")
        values, lines, unreadable = read_env_file(text, upload.name or ".env")
        for message in unreadable:
            import_form.add_error("env_file", message)
        secret = bool(request.POST.get("secret"))
        current = {v["key"]: v for v in workflow_document(workflow)["variables"]}
        for key, value in values.items():
            current[key] = {"key": key, "value": value or "", "secret": secret, "scope": "build"}
        try:
            if not unreadable:
                check_save_workflow(
                    request.user,
                    workflow.service,
                    {"variables": list(current.values())},
                    workflow,
                    partial=True,
                )
        except Invalid as exc:
            errors = env_file_errors(exc.errors, list(current), lines, upload.name or ".env")
            add_api_errors(import_form, Invalid(errors))
        except API_ERRORS as exc:
            add_api_errors(import_form, exc)
    return variables_page(request, workflow, import_form)


def variables_page(request, workflow: Workflow, import_form) -> HttpResponse:
    context = variables_context(request, workflow, import_form=import_form)
    status = 400 if import_form.errors else 200
    return render_page_or_partial(
        request, "workflows/variables.html", "workflows/htmx/_variables.html", context, status
    )


@login_required
@require_GET
def variables_export(request, pk: int):
    """The plain variables as a `.env` file; secrets are left out (never exported)."""
    workflow = workflow_for_change(request, pk)
    lines = [f"{v.key}={json.dumps(v.value)}" for v in workflow.variables.filter(is_secret=False)]
    response = HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="workflow-{workflow.pk}.env"'
    return response


@login_required
@require_POST
def variables_test_ref(request, pk: int):
    """Test of a secret-manager reference: resolves it in a probe and says only its length."""
    workflow_for_change(request, pk)
    require(request.user, CHANGE)
    manager, ref = request.POST.get("secret_manager", ""), request.POST.get("secret_ref", "")
    if manager not in ("aws", "gcp") or not ref.strip():
        return render_probe(
            request, None, "secret_ref", "choose a secret manager and name the secret"
        )
    probe_id = start_probe(probes.secret_reference, manager, ref.strip(), owner=request.user.pk)
    return render_probe(request, probe_id, "secret_ref")


# Edit and delete pages. The changes go through the API's service functions
# (`do_update_object`, `check_delete_*`), so the page refuses whom and what the API refuses.


def write_only(request, data: dict, secrets: dict[str, str]) -> dict:
    """`secrets` maps a write-only field to its "remove" box: a blank field keeps the stored
    value (it is left out of the PATCH), a ticked box clears it."""
    for field, clear in secrets.items():
        data.pop(clear, None)
        if request.POST.get(clear):
            data[field] = ""
        elif not data.get(field):
            data.pop(field, None)
    return data


# What each edit page is called in its template, its context and the settings page's anchor.
EDIT_PAGES = {
    Service: ("service", "services"),
    RegistryConnection: ("registry", "registries"),
    Environment: ("environment", "environments"),
}


def edit_page(
    request,
    project: Project,
    instance: Service | RegistryConnection | Environment,
    form,
    serializer: type[ModelSerializer[Any]],
    secrets: dict[str, str],
    prepare: Callable[[dict], dict],
):
    """An edit page: GET shows `form`; POST sends the form's fields (the write-only `secrets`
    as `write_only` says, then `prepare`d) through `do_update_object`, the API's PATCH, and goes
    back to the project's settings, or shows the API's refusal on the form's fields (400)."""
    name, section = EDIT_PAGES[type(instance)]
    if request.method == "POST":
        data = prepare(write_only(request, form_data(request, form), secrets))
        try:
            do_update_object(request.user, instance, serializer, data, request)
        except API_ERRORS as exc:
            add_api_errors(form, exc)
        else:
            return go(request, reverse("ui-project-settings", args=[project.pk]) + f"#{section}")
    context = {"project": project, name: instance, "form": form}
    status = 400 if form.errors else 200
    return render(request, f"workflows/{name}_edit.html", context, status=status)


def project_object(request, pk: int, model, object_pk: int):
    project = project_for(request.user, pk)
    return project, get_object_or_404(model, pk=object_pk, project=project)


@login_required
@require_http_methods(["GET", "POST"])
def service_edit(request, pk: int, service_pk: int):
    """Edit a service, as `PATCH /api/services/<id>/` ("Change workflow"). The token and SSH
    key are write-only: blank keeps the stored one, the box under each removes it."""
    project, service = project_object(request, pk, Service, service_pk)
    require_project_perm(request.user, project, CHANGE)
    form = ServiceEditForm(request.POST or None, service=service)

    def prepare(data: dict) -> dict:
        data["image_registry"] = data.get("image_registry") or None
        if not data.get("default_branch"):
            data.pop("default_branch", None)
        return data

    secrets = {"git_token": "clear_git_token", "git_ssh_key": "clear_git_ssh_key"}
    return edit_page(request, project, service, form, ServiceSerializer, secrets, prepare)


@login_required
@require_http_methods(["GET", "POST"])
def registry_edit(request, pk: int, registry_pk: int):
    """Edit a registry connection, as `PATCH /api/registries/<id>/` ("Change workflow"); the
    password, token or key is write-only (blank keeps it)."""
    project, registry = project_object(request, pk, RegistryConnection, registry_pk)
    require_project_perm(request.user, project, CHANGE)
    form = RegistryEditForm(request.POST or None, registry=registry)

    def prepare(data: dict) -> dict:
        return {**data, "insecure": bool(request.POST.get("insecure"))}

    secrets = {"password": "clear_password"}
    return edit_page(
        request, project, registry, form, RegistryConnectionSerializer, secrets, prepare
    )


def delete_page(
    request, project, obj, kind: str, perm: str, delete, consequences: list[str], done_url=""
):
    """The confirm page of a delete (GET), and the delete itself (POST), then `done_url` (the
    project's page by default). A refused delete (ProtectedError: the API's 409) shows the page
    again, 409, naming what is in the way; nothing was deleted."""
    require_project_perm(request.user, project, perm)
    blockers: list[dict] = []
    more = 0
    if request.method == "POST":
        try:
            delete(request.user, obj)
        except ProtectedError as exc:
            blockers, more = blocker_links(exc.protected_objects)
        else:
            return go(request, done_url or reverse("ui-project-settings", args=[project.pk]))
    context = {
        "project": project,
        "object": obj,
        "kind": kind,
        "consequences": consequences,
        "blockers": blockers,
        "more_blockers": more,
    }
    status = 409 if blockers else 200
    return render(request, "workflows/delete_confirm.html", context, status=status)


def blocker_links(objects) -> tuple[list[dict], int]:
    """What stands in the way of a delete, each once (a deploy step counts as its workflow),
    with the page where it is changed: the first MAX_BLOCKERS_LISTED, and how many more."""
    distinct: dict[tuple[str, int], object] = {}
    for obj in objects:
        if isinstance(obj, WorkflowEnvironment):
            key = (Workflow._meta.label, obj.workflow_id)
        else:
            key = (obj._meta.label, obj.pk)
        distinct.setdefault(key, obj)
    keys = sorted(distinct)[:MAX_BLOCKERS_LISTED]
    return [blocker_link(distinct[key]) for key in keys], len(distinct) - len(keys)


def blocker_link(obj) -> dict:
    if isinstance(obj, WorkflowEnvironment):  # the user knows the workflow, not its steps
        obj = obj.workflow
    if isinstance(obj, Workflow):
        name, url = f"{obj.service.name}/{obj.name}", reverse("workflow-page", args=[obj.pk])
    elif isinstance(obj, Service):
        name, url = obj.name, reverse("ui-service-edit", args=[obj.project_id, obj.pk])
    elif isinstance(obj, Execution):
        name = f"{obj.workflow.service.name}/{obj.workflow.name} #{obj.number}"
        url = reverse("execution-page", args=[obj.pk])
    else:
        name, url = str(obj), ""
    kind = "run" if isinstance(obj, Execution) else str(obj._meta.verbose_name)
    return {"kind": kind, "name": name, "url": url}


@login_required
@require_http_methods(["GET", "POST"])
def service_delete(request, pk: int, service_pk: int):
    """Delete a service, as `DELETE /api/services/<id>/` ("Delete workflow"; 409 while a run
    has not ended)."""
    project, service = project_object(request, pk, Service, service_pk)
    workflows = service.workflows.count()
    runs = Execution.objects.filter(workflow__service=service).count()
    consequences = [
        f"its {workflows} workflow(s) and their CI variables",
        f"its {runs} run(s), with their logs, reports, approvals and releases",
    ]
    return delete_page(
        request, project, service, "service", DELETE, do_delete_service, consequences
    )


@login_required
@require_http_methods(["GET", "POST"])
def registry_delete(request, pk: int, registry_pk: int):
    """Delete a registry connection, as `DELETE /api/registries/<id>/` ("Change workflow"; 409
    while a workflow pushes to it or a service pulls through it)."""
    project, registry = project_object(request, pk, RegistryConnection, registry_pk)
    consequences = ["its stored credentials"]
    return delete_page(
        request,
        project,
        registry,
        "registry connection",
        CHANGE,
        do_delete_registry,
        consequences,
    )


@login_required
@require_http_methods(["GET", "POST"])
def environment_delete(request, pk: int, env_pk: int):
    """Delete an environment, as `DELETE /api/environments/<id>/` ("Change workflow"; 409 while
    a workflow deploys to it or builds in it). Deactivate keeps it and its history instead."""
    project, environment = project_object(request, pk, Environment, env_pk)
    releases = environment.releases.count()
    consequences = [
        f"its {releases} release record(s) (what ran there, and when)",
        "its stored kubeconfig" if environment.kubeconfig else "its settings",
    ]
    return delete_page(
        request,
        project,
        environment,
        "environment",
        CHANGE,
        do_delete_environment,
        consequences,
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_edit(request, pk: int):
    """Rename a project or change its description, as `PATCH /api/projects/<id>/` ("Can change
    project" as a member)."""
    project = project_for(request.user, pk)
    require_project_perm(request.user, project, CHANGE_PROJECT)
    initial = {"name": project.name, "description": project.description}
    form = ProjectForm(request.POST or None, initial=initial)
    if request.method == "POST":
        try:
            do_update_project(request.user, project, form_data(request, form))
        except API_ERRORS as exc:
            add_api_errors(form, exc)
        else:
            return go(request, reverse("ui-project-settings", args=[project.pk]))
    status = 400 if form.errors else 200
    context = {"project": project, "form": form}
    return render(request, "workflows/project_edit.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def project_delete(request, pk: int):
    """Delete a project, as `DELETE /api/projects/<id>/` ("Can delete project" as a member; 409
    while a run in it has not ended)."""
    project = project_for(request.user, pk)
    runs = Execution.objects.filter(workflow__service__project=project).count()
    consequences = [
        f"its {project.services.count()} service(s) with their workflows and CI variables",
        f"its {project.environments.count()} environment(s) and "
        f"{project.registries.count()} registry connection(s), with their credentials",
        f"its {runs} run(s), with their logs, reports, approvals and releases",
    ]
    return delete_page(
        request,
        project,
        project,
        "project",
        DELETE_PROJECT,
        do_delete_project,
        consequences,
        done_url=reverse("home"),
    )


@login_required
@require_http_methods(["GET", "POST"])
def environment_edit(request, pk: int, env_pk: int):
    """Edit an environment's name, target, namespace and kubeconfig, as `PATCH
    /api/environments/<id>/` ("Change workflow"); no file chosen keeps the stored kubeconfig."""
    project, environment = project_object(request, pk, Environment, env_pk)
    require_project_perm(request.user, project, CHANGE)
    form = EnvironmentEditForm(request.POST or None, request.FILES or None, environment=environment)

    def prepare(data: dict) -> dict:
        data.pop("kubeconfig")
        kubeconfig = uploaded_kubeconfig(request)
        if kubeconfig:
            data["kubeconfig"] = kubeconfig
        if not data["namespace"]:
            data.pop("namespace")
        return data

    return edit_page(request, project, environment, form, EnvironmentSerializer, {}, prepare)
