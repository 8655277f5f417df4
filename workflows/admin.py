"""Projects, services, environments, registries and workflows in the admin.

The admin is a door to the same rules as the API: every page is scoped to the user's projects
(atmosly.admin_base), and every form is validated by the API's own serializers and service
functions, so it refuses what the API refuses with the same field paths and messages. A
workflow is edited as its whole document (the YAML that the API exports and imports).
"""

from __future__ import annotations

from typing import Any

import yaml
from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from rest_framework import serializers

from atmosly.admin_base import ProjectScopedAdmin, ReadOnlyInline
from atmosly.errors import Invalid
from atmosly.forms import WriteOnlyTextarea
from workflows.document import workflow_document
from workflows.models import Environment, Project, RegistryConnection, Service, Workflow
from workflows.permissions import (
    ADD,
    CHANGE,
    CHANGE_PROJECT,
    DELETE,
    VIEW,
    administers,
)
from workflows.serializers import (
    EnvironmentSerializer,
    RegistryConnectionSerializer,
    ServiceSerializer,
)
from workflows.services import (
    check_workflow_document,
    do_create_service,
    do_save_workflow,
    editable_part,
    unfinished_runs,
)

DELETE_PROJECT = "workflows.delete_project"


def error_lines(exc: Invalid) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in exc.errors]


class RequestForm(forms.ModelForm):
    """A form that knows who is saving (set by `ApiValidatedAdmin.get_form`)."""

    request: Any = None


class SerializerForm(RequestForm):
    """Checked by the API's serializer after Django's own field checks, so the admin refuses
    exactly what the API refuses, with the same messages. Credential fields (`write_only`) are
    entered, never shown: blank means keep what is stored."""

    serializer_class: type
    write_only: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.serializer: serializers.BaseSerializer[Any] | None = None
        api_fields = self.serializer_class().fields
        for name in self.write_only:
            if name in self.fields:
                # Multi-line as the API documents it (a key, a kubeconfig), else a password.
                multiline = api_fields[name].style.get("base_template") == "textarea.html"
                self.fields[name].widget = (
                    WriteOnlyTextarea() if multiline else forms.PasswordInput(render_value=False)
                )
                self.fields[name].required = False
                if self.instance.pk and getattr(self.instance, name):
                    self.fields[name].help_text = "Set. Leave blank to keep it."

    def clean(self):
        super().clean()
        data = self.cleaned_data
        for name in self.write_only:
            if self.instance.pk and not data.get(name):
                data[name] = getattr(self.instance, name)
        if self.errors:
            return data
        payload = {
            name: value.pk if isinstance(value, Model) else value
            for name, value in data.items()
            if name in self.fields
        }
        serializer = self.serializer_class(
            instance=self.instance if self.instance.pk else None,
            data=payload,
            partial=bool(self.instance.pk),
            context={"request": self.request},
        )
        if not serializer.is_valid():
            for field, message in error_lines(Invalid(serializer.errors)):
                if field in self.fields:
                    self.add_error(field, message)
                else:
                    self.add_error(None, f"{field}: {message}" if field else message)
        self.serializer = serializer
        return data

    def apply_validated(self, obj: Model) -> Model:
        """What the serializer accepted, as the API would write it."""
        assert self.serializer is not None  # set by clean(), which ran: the form is valid
        for name, value in self.serializer.validated_data.items():
            setattr(obj, name, value)
        return obj


def serializer_form(
    serializer: type[serializers.ModelSerializer[Any]], *, write_only: tuple[str, ...] = ()
) -> type:
    """A SerializerForm whose fields are exactly the serializer's writable ones: the admin
    cannot write a field the API does not validate."""
    model = serializer.Meta.model
    fields = [name for name, f in serializer().fields.items() if not f.read_only]
    meta = type("Meta", (), {"model": model, "fields": fields})
    return type(
        f"{model.__name__}Form",
        (SerializerForm,),
        {"Meta": meta, "serializer_class": serializer, "write_only": write_only},
    )


class ApiValidatedAdmin(ProjectScopedAdmin):
    """Objects of a project, edited through the API's serializer. A project cannot be changed
    afterwards (the API refuses that too)."""

    project_paths = ("project",)
    # Environments and registries are part of a project's workflow configuration (as in the API).
    spec_perms = {"view": VIEW, "add": CHANGE, "change": CHANGE, "delete": CHANGE}
    list_filter = [("project", admin.RelatedOnlyFieldListFilter)]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def get_readonly_fields(self, request, obj=None):
        return ["project"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        form.apply_validated(obj).save()


class ServiceInline(ReadOnlyInline):
    model = Service
    fields = ["name", "repo_url", "default_branch", "image"]
    show_change_link = True


class EnvironmentInline(ReadOnlyInline):
    model = Environment
    fields = ["name", "order", "is_active", "target", "namespace"]
    show_change_link = True


@admin.register(Project)
class ProjectAdmin(ProjectScopedAdmin):
    """A project and its members. Only someone who administers a project (a superuser, or a
    member with the Admin role's "change project") changes it or who its members are."""

    project_paths = ("pk",)
    spec_perms = {"view": VIEW}
    list_display = ["name", "description", "created_at"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "members"]
    filter_horizontal = ["members"]
    inlines = [EnvironmentInline, ServiceInline]

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is None:
            return request.user.has_perm(CHANGE_PROJECT)
        return administers(request.user, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Also without `obj` (the bulk action): the changelist holds only the user's projects,
        # which they administer when they hold both permissions.
        return request.user.has_perm(DELETE_PROJECT) and self.has_change_permission(request, obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            # Whoever creates a project administers it (as with the API).
            form.instance.members.add(request.user)

    def get_deleted_objects(self, objs, request):
        """The API's rule (`do_delete_project`): runs not yet ended protect their project."""
        return with_unfinished_runs(
            super().get_deleted_objects(objs, request), project__in=[o.pk for o in objs]
        )


@admin.register(Service)
class ServiceAdmin(ApiValidatedAdmin):
    form = serializer_form(ServiceSerializer, write_only=("git_token", "git_ssh_key"))
    # Creating a service creates its default workflow: the workflow permissions (as in the API).
    spec_perms = {"view": VIEW, "add": ADD, "change": CHANGE, "delete": DELETE}
    list_display = ["name", "project", "repo_url", "default_branch", "image"]
    search_fields = ["name", "repo_url", "image"]

    def save_model(self, request, obj, form, change):
        form.apply_validated(obj)
        if change:
            obj.save()
        else:
            do_create_service(obj)

    def get_deleted_objects(self, objs, request):
        """The API's rule (`do_delete_service`): runs not yet ended protect their service."""
        return with_unfinished_runs(
            super().get_deleted_objects(objs, request), pk__in=[o.pk for o in objs]
        )


def with_unfinished_runs(deleted: tuple, **services) -> tuple:
    """Adds the unfinished runs of the services matching `services` to the admin's list of
    protected objects, so its delete page refuses as the API does (409) and deletes nothing."""
    to_delete, model_count, perms_needed, protected = deleted
    service_ids = Service.objects.filter(**services).values("pk")
    running = unfinished_runs(workflow__service__in=service_ids)
    return to_delete, model_count, perms_needed, [*protected, *(f"run {r}" for r in running)]


@admin.register(Environment)
class EnvironmentAdmin(ApiValidatedAdmin):
    form = serializer_form(EnvironmentSerializer, write_only=("kubeconfig",))
    list_display = ["name", "project", "order", "is_active", "target", "namespace"]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter), "is_active", "target"]
    search_fields = ["name", "namespace"]


@admin.register(RegistryConnection)
class RegistryConnectionAdmin(ApiValidatedAdmin):
    form = serializer_form(RegistryConnectionSerializer, write_only=("password",))
    list_display = ["name", "project", "provider", "url", "username"]
    list_filter = ["provider", ("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "url"]


NEW_DOCUMENT = {"name": "", "pipeline_type": "ci"}


class WorkflowDocumentForm(RequestForm):
    """A workflow as its whole document, in YAML: the same document the API exports, imports
    and validates (`check_workflow_document`), deploy steps, approvers and variables included.
    Secret values never show; a secret variable with `value: null` keeps its stored value."""

    document = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 40, "spellcheck": "false", "style": "font-family: monospace;"}
        ),
        help_text="The workflow document in YAML, as GET /api/workflows/&lt;id&gt;/export/ gives "
        "it. It is checked exactly as the API checks it.",
    )

    class Meta:
        model = Workflow
        fields = ["service"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        doc = editable_part(workflow_document(self.instance)) if self.instance.pk else NEW_DOCUMENT
        self.initial.setdefault("document", yaml.safe_dump(doc, sort_keys=False))
        self.validated: dict[str, Any] | None = None

    def clean(self):
        super().clean()
        data = self.cleaned_data
        service = self.instance.service if self.instance.pk else data.get("service")
        text = data.get("document")
        if service is None or text is None:
            return data
        try:
            doc = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            self.add_error("document", f"YAML parse error: {exc}")
            return data
        try:
            self.validated = check_workflow_document(
                self.request.user, service, doc, self.instance if self.instance.pk else None
            )
        except Invalid as exc:
            for field, message in error_lines(exc):
                self.add_error("document", f"{field}: {message}" if field else message)
        except PermissionDenied as exc:
            self.add_error("document", str(exc))
        return data


@admin.register(Workflow)
class WorkflowAdmin(ApiValidatedAdmin):
    """Saved through the API's service functions: validation, then `do_save_workflow`, which
    audits every change of approvers."""

    form = WorkflowDocumentForm
    project_paths = ("service__project",)
    spec_perms = {"view": VIEW, "add": ADD, "change": CHANGE, "delete": DELETE}
    list_display = ["name", "service", "pipeline_type", "source_kind", "trigger_mode", "updated_at"]
    list_filter = [
        "pipeline_type",
        "source_kind",
        "trigger_mode",
        ("service__project", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["name", "service__name", "repository"]

    def get_readonly_fields(self, request, obj=None):
        return ["service"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        do_save_workflow(obj.service, form.validated, obj, actor=request.user)
