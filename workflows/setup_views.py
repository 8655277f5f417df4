"""Set-up pages: projects, members, services, environments, registries and CI variables.

Each change goes through the API's serializer and service function, with the API's permission
rule, so a page can do exactly what the API lets the same user do, and says why not in the
API's words (field path and message, next to the field).
"""

from __future__ import annotations

import functools
import io
import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, retarget
from dotenv import dotenv_values
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError

from atmosly.forms import add_api_errors
from atmosly.htmx import htmx_partial, render_page_or_partial
from atmosly.probes import probe_result, start_probe
from integrations.kubernetes.check import check_cluster
from integrations.registries import validate_registry_settings
from workflows import probes
from workflows.document import workflow_document
from workflows.forms import (
    EnvFileForm,
    EnvironmentForm,
    MemberForm,
    ProjectForm,
    RegistryForm,
    ServiceForm,
    VariableForm,
)
from workflows.models import Environment, Project, Service, Workflow
from workflows.permissions import ADD, CHANGE, VIEW, administers, visible_projects
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
    grantable_roles,
)

API_ERRORS = (DRFValidationError,)


def api_denied_is_403(view):
    """The service functions refuse with DRF's PermissionDenied (the API's 403); a page answers
    the same 403 with the same message (templates/403.html)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DRFPermissionDenied as exc:
            raise PermissionDenied(str(exc.detail)) from exc

    return wrapper


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
@api_denied_is_403
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
        "members": project.members.prefetch_related("groups").order_by("username"),
        "environments": project.environments.all(),
        "registries": project.registries.all(),
        "services": project.services.prefetch_related("workflows"),
        "member_form": forms.get("member_form") or MemberForm(roles=grantable_roles(user)),
        "environment_form": forms.get("environment_form") or EnvironmentForm(),
        "registry_form": forms.get("registry_form") or RegistryForm(),
    }


@login_required
@api_denied_is_403
@require_GET
def project_settings(request, pk: int):
    """A project's members, services, environments and registries; forms for who may change."""
    project = project_for(request.user, pk)
    return render(request, "workflows/project.html", settings_context(request, project))


@login_required
@api_denied_is_403
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
@api_denied_is_403
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
@api_denied_is_403
@require_POST
def service_test(request, pk: int):
    """Test connection for the service form: `git ls-remote` with the typed credentials, or
    the tags of the pre-built image; runs as a probe and answers a polling partial."""
    project = project_for(request.user, pk)
    require(request.user, ADD)
    post = request.POST
    if post.get("repo_url"):
        probe_id = start_probe(
            probes.git_refs,
            post["repo_url"].strip(),
            post.get("git_username", ""),
            post.get("git_token", ""),
            post.get("git_ssh_key", ""),
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
@api_denied_is_403
@require_GET
def probe(request, probe_id: str):
    """Polled by a probe partial until its check is done; only who started it may read it."""
    if probe_result(probe_id, request.user.pk) is None:
        raise Http404
    return render_probe(request, probe_id, request.GET.get("field", ""), polled=True)


@login_required
@api_denied_is_403
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
@api_denied_is_403
@require_POST
def environment_test(request, pk: int):
    """Test connection of a Kubernetes target, as a probe: the server version, then a
    SelfSubjectAccessReview per verb the deploy needs (create, patch) on Deployments in the
    namespace (integrations/kubernetes/check.py). With `environment=<id>` it tests that saved
    environment's stored kubeconfig; otherwise the add form's upload and `namespace`."""
    project = project_for(request.user, pk)
    require(request.user, CHANGE)
    saved = request.POST.get("environment")
    if saved:
        environment = get_object_or_404(Environment, pk=saved, project=project)
        field = f"environment{environment.pk}"
        if environment.target != "kubernetes":
            return render_probe(request, None, field, "the local engine needs no test")
        # Plain values: the probe thread does not touch the database.
        args = (environment.kubeconfig, environment.namespace, environment.in_cluster)
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
@api_denied_is_403
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
@api_denied_is_403
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
@api_denied_is_403
@require_POST
def registry_test(request, pk: int):
    """Test login with the form's settings (the real login: provider token, then the
    registry's v2 auth handshake), as a probe."""
    project_for(request.user, pk)
    require(request.user, CHANGE)
    form = RegistryForm(request.POST)
    settings = {**form_data(request, form), "insecure": bool(request.POST.get("insecure"))}
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
@api_denied_is_403
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


@login_required
@api_denied_is_403
@require_POST
def variables_import(request, pk: int):
    """Imports a `.env` file (python-dotenv's syntax) into the workflow's variables, plain or
    all secret; an existing key is replaced. One document save: all or nothing."""
    workflow = workflow_for_change(request, pk)
    require(request.user, CHANGE)
    import_form = EnvFileForm(request.POST, request.FILES)
    upload = request.FILES.get("env_file")
    if upload is None:
        import_form.add_error("env_file", "choose a .env file")
    else:
        text = upload.read(256 * 1024).decode("utf-8", errors="replace")
        values = dotenv_values(stream=io.StringIO(text))
        secret = bool(request.POST.get("secret"))
        current = {v["key"]: v for v in workflow_document(workflow)["variables"]}
        for key, value in values.items():
            current[key] = {"key": key, "value": value or "", "secret": secret, "scope": "build"}
        try:
            check_save_workflow(
                request.user,
                workflow.service,
                {"variables": list(current.values())},
                workflow,
                partial=True,
            )
        except API_ERRORS as exc:
            add_api_errors(import_form, exc)
    context = variables_context(request, workflow, import_form=import_form)
    status = 400 if import_form.errors else 200
    return render_page_or_partial(
        request, "workflows/variables.html", "workflows/htmx/_variables.html", context, status
    )


@login_required
@api_denied_is_403
@require_GET
def variables_export(request, pk: int):
    """The plain variables as a `.env` file; secrets are left out (never exported)."""
    workflow = workflow_for_change(request, pk)
    lines = [f"{v.key}={json.dumps(v.value)}" for v in workflow.variables.filter(is_secret=False)]
    response = HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="workflow-{workflow.pk}.env"'
    return response


@login_required
@api_denied_is_403
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
