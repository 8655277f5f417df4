from __future__ import annotations

from django import forms
from django.contrib import admin

from workflows.models import (
    CIVariable,
    Environment,
    Project,
    RegistryConnection,
    Service,
    Workflow,
    WorkflowEnvironment,
)


class WriteOnlyForm(forms.ModelForm):
    """Credential fields are entered, never shown: blank means keep what is stored."""

    write_only: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.write_only:
            if name in self.fields:
                self.fields[name].widget = forms.PasswordInput(render_value=False)
                self.fields[name].required = False
                if self.instance.pk and getattr(self.instance, name):
                    self.fields[name].help_text = "Set. Leave blank to keep it."

    def clean(self):
        data = super().clean()
        for name in self.write_only:
            if self.instance.pk and not data.get(name):
                data[name] = getattr(self.instance, name)
        return data


class ServiceForm(WriteOnlyForm):
    write_only = ("git_token",)

    class Meta:
        model = Service
        fields = "__all__"


class EnvironmentForm(WriteOnlyForm):
    write_only = ("kubeconfig",)

    class Meta:
        model = Environment
        fields = "__all__"


class RegistryForm(WriteOnlyForm):
    write_only = ("password",)

    class Meta:
        model = RegistryConnection
        fields = "__all__"


class ServiceInline(admin.TabularInline):
    model = Service
    fields = ["name", "repo_url", "default_branch", "image"]
    extra = 0
    show_change_link = True


class EnvironmentInline(admin.TabularInline):
    model = Environment
    fields = ["name", "order", "is_active", "target", "namespace"]
    extra = 0
    show_change_link = True


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name", "description"]
    filter_horizontal = ["members"]
    inlines = [EnvironmentInline, ServiceInline]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    form = ServiceForm
    list_display = ["name", "project", "repo_url", "default_branch", "image"]
    list_filter = ["project"]
    search_fields = ["name", "repo_url", "image"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            from workflows.services import do_create_service

            do_create_service(obj)


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    form = EnvironmentForm
    list_display = ["name", "project", "order", "is_active", "target", "namespace"]
    list_filter = ["project", "is_active", "target"]
    search_fields = ["name", "namespace"]


@admin.register(RegistryConnection)
class RegistryConnectionAdmin(admin.ModelAdmin):
    form = RegistryForm
    list_display = ["name", "project", "provider", "url", "username"]
    list_filter = ["provider", "project"]
    search_fields = ["name", "url"]


class DeployStepInline(admin.StackedInline):
    model = WorkflowEnvironment
    extra = 0
    filter_horizontal = ["approver_users", "approver_groups"]


class VariableForm(WriteOnlyForm):
    write_only = ("secret_value",)

    class Meta:
        model = CIVariable
        fields = "__all__"


class VariableInline(admin.TabularInline):
    model = CIVariable
    form = VariableForm
    extra = 0
    fields = ["key", "value", "secret_value", "is_secret", "scope", "secret_manager", "secret_ref"]


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["name", "service", "pipeline_type", "source_kind", "trigger_mode", "updated_at"]
    list_filter = ["pipeline_type", "source_kind", "trigger_mode", "service__project"]
    search_fields = ["name", "service__name", "repository"]
    exclude = ["webhook_secret"]
    inlines = [DeployStepInline, VariableInline]

    def save_model(self, request, obj, form, change):
        # A change here is a new version too: a builder tab opened before it must not overwrite it.
        from django.db.models import F

        if change:
            obj.version = F("version") + 1
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
        obj.refresh_from_db(fields=["version"])
