"""Serializers for projects, services, environments and registry connections.

Credentials (git tokens, kubeconfigs, registry passwords) are write-only: responses say only
whether one is set.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.validators import UniqueTogetherValidator

from atmosly.api_input import BoundedModelSerializer
from integrations.registries import validate_registry_settings
from workflows.models import Environment, Project, RegistryConnection, Service, TargetKind
from workflows.permissions import visible_projects
from workflows.validators import (
    SSH_KEY_MAX_LENGTH,
    check_ssh_private_key,
    validate_kubeconfig,
    validate_ref_name,
)


class ProjectSerializer(BoundedModelSerializer):
    members: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True, help_text="Usernames of the members."
    )

    class Meta:
        model = Project
        fields = ["id", "name", "description", "members", "created_at"]
        # GitLab's limit for a project's description.
        extra_kwargs = {"description": {"max_length": 2000}}


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.CharField(
        max_length=150, required=False, allow_blank=True, help_text="A role (group) name."
    )


class ProjectScopedSerializer(BoundedModelSerializer):
    """Limits `project` to the projects the user is a member of."""

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        project_field = fields.get("project")
        if isinstance(project_field, serializers.RelatedField) and request is not None:
            # The stubs type `queryset` as QuerySet | Manager, which mypy reads as a descriptor.
            project_field.queryset = visible_projects(request.user)  # type: ignore[arg-type]
        if (
            self.instance is not None
            and not isinstance(self.instance, list)
            and "project" in fields
        ):
            fields["project"].read_only = True
        return fields

    def get_validators(self) -> list:
        # validate() below checks (project, name) with a message on `name`; DRF's generic
        # UniqueTogetherValidator would answer first, on no field.
        return [v for v in super().get_validators() if not isinstance(v, UniqueTogetherValidator)]

    def validate(self, attrs: dict) -> dict:
        """Names are unique per project. Checked here, on the validated project: the raw
        `project` of the request may be anything (a string is a 500 in a query) or a project
        the user cannot see (whose names must not be probed)."""
        project = attrs.get("project") or getattr(self.instance, "project", None)
        name = attrs.get("name", getattr(self.instance, "name", None))
        if project is not None and name:
            model: Any = self.Meta.model  # each subclass's own; the stubs cannot say which
            qs = model.objects.filter(project=project, name=name)
            if self.instance is not None:
                qs = qs.exclude(pk=self.instance.pk)
            if qs.exists():
                raise serializers.ValidationError(
                    {"name": f'"{name}" already exists in this project'}
                )
        return attrs


class ServiceSerializer(ProjectScopedSerializer):
    git_token = serializers.CharField(
        write_only=True, required=False, allow_blank=True, style={"input_type": "password"}
    )
    has_git_token = serializers.SerializerMethodField()
    git_ssh_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=SSH_KEY_MAX_LENGTH,
        trim_whitespace=False,
        style={"base_template": "textarea.html"},
    )
    has_git_ssh_key = serializers.SerializerMethodField()
    default_workflow = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = [
            "id",
            "project",
            "name",
            "repo_url",
            "default_branch",
            "git_username",
            "git_token",
            "has_git_token",
            "git_ssh_key",
            "has_git_ssh_key",
            "image",
            "image_registry",
            "default_workflow",
            "created_at",
        ]

    def validate_default_branch(self, value: str) -> str:
        """A branch name by `git check-ref-format --branch`'s rules, as a run's `branch` is:
        the default branch is what a run with no ref builds."""
        try:
            validate_ref_name(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value

    def get_has_git_token(self, obj: Service) -> bool:
        return bool(obj.git_token)

    def get_has_git_ssh_key(self, obj: Service) -> bool:
        return bool(obj.git_ssh_key)

    def validate_git_ssh_key(self, value: str) -> str:
        """An SSH private key git's ssh can use unattended, stored with one final newline."""
        return check_ssh_private_key(value)

    def get_default_workflow(self, obj: Service) -> int | None:
        workflow = obj.workflows.filter(is_default=True).first()
        return workflow.pk if workflow else None

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        repo_url = attrs.get("repo_url", getattr(self.instance, "repo_url", ""))
        image = attrs.get("image", getattr(self.instance, "image", ""))
        if not repo_url and not image:
            raise serializers.ValidationError(
                {
                    "repo_url": "give a Git repository URL, or a pre-built image for a deploy-only "
                    "service"
                }
            )
        registry = attrs.get("image_registry")
        project = attrs.get("project") or getattr(self.instance, "project", None)
        if registry and project and registry.project_id != project.pk:
            raise serializers.ValidationError(
                {"image_registry": "the registry belongs to another project"}
            )
        return attrs


class EnvironmentSerializer(ProjectScopedSerializer):
    kubeconfig = serializers.CharField(
        write_only=True, required=False, allow_blank=True, style={"base_template": "textarea.html"}
    )
    has_kubeconfig = serializers.SerializerMethodField()

    class Meta:
        model = Environment
        fields = [
            "id",
            "project",
            "name",
            "order",
            "is_active",
            "target",
            "kubeconfig",
            "has_kubeconfig",
            "in_cluster",
            "namespace",
            "created_at",
        ]

    def get_has_kubeconfig(self, obj: Environment) -> bool:
        return bool(obj.kubeconfig)

    def validate_kubeconfig(self, value: str) -> str:
        if value:
            try:
                validate_kubeconfig(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(exc.messages) from exc
        return value

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        target = attrs.get("target", getattr(self.instance, "target", TargetKind.LOCAL))
        if target == TargetKind.KUBERNETES:
            has_config = attrs.get("kubeconfig") or getattr(self.instance, "kubeconfig", "")
            in_cluster = attrs.get("in_cluster", getattr(self.instance, "in_cluster", False))
            if not has_config and not in_cluster:
                raise serializers.ValidationError(
                    {"kubeconfig": "a Kubernetes environment needs a kubeconfig or in_cluster"}
                )
        return attrs


class RegistryConnectionSerializer(ProjectScopedSerializer):
    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, style={"input_type": "password"}
    )
    has_password = serializers.SerializerMethodField()

    class Meta:
        model = RegistryConnection
        fields = [
            "id",
            "project",
            "name",
            "provider",
            "url",
            "username",
            "password",
            "has_password",
            "aws_access_key_id",
            "aws_region",
            "aws_endpoint_url",
            "insecure",
            "created_at",
        ]

    def get_has_password(self, obj: RegistryConnection) -> bool:
        return bool(obj.password)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        merged = {
            field: attrs.get(field, getattr(self.instance, field, ""))
            for field in (
                "provider",
                "url",
                "username",
                "password",
                "aws_access_key_id",
                "aws_region",
            )
        }
        errors = validate_registry_settings(merged)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs
