"""Serializers for projects, services, environments and registry connections.

Credentials (git tokens, kubeconfigs, registry passwords) are write-only: responses say only
whether one is set.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from atmosly.api_input import BoundedModelSerializer, parse_id
from workflows.models import Environment, Project, RegistryConnection, Service, TargetKind
from workflows.permissions import visible_projects
from workflows.validators import SSH_KEY_MAX_LENGTH, check_ssh_private_key, validate_kubeconfig


class ProjectSerializer(BoundedModelSerializer):
    members = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True, help_text="Usernames of the members."
    )

    class Meta:
        model = Project
        fields = ["id", "name", "description", "members", "created_at"]


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
        if "project" in fields and request is not None:
            fields["project"].queryset = visible_projects(request.user)
        if (
            self.instance is not None
            and not isinstance(self.instance, list)
            and "project" in fields
        ):
            fields["project"].read_only = True
        return fields

    def validate_name(self, value: str) -> str:
        # `project` may not be valid yet (its own field reports that): check names only in a
        # project that can exist.
        project = self.instance.project_id if self.instance else self.initial_data.get("project")
        project = parse_id(project)
        qs = self.Meta.model.objects.filter(project_id=project, name=value)
        if self.instance:
            qs = qs.exclude(pk=self.instance.pk)
        if project and qs.exists():
            raise serializers.ValidationError(f'"{value}" already exists in this project')
        return value


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
        from integrations.registries import validate_registry_settings

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
