"""The whole workflow definition as one document: what the builder loads and saves, and what
export/import carry as YAML. Validation errors name the field path, e.g.
`deploy.environments[2].environment: environment "prod" is inactive`.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework import serializers

from atmosly.documents import PlainScalar, resolve_plain
from workflows.models import (
    SCRIPT_HOOKS,
    BuilderKind,
    CronConcurrency,
    DeployMode,
    PipelineType,
    Platform,
    RunConcurrency,
    ScanThreshold,
    SecretManager,
    SourceKind,
    TriggerMode,
    VariableScope,
    Workflow,
)
from workflows.validators import (
    ENV_KEY_RE,
    MAX_REF_BYTES,
    MIN_SECRET_VALUE_LENGTH,
    short_secret_message,
    validate_branch_pattern,
    validate_cron,
    validate_name,
    validate_time_zone,
)

REPOSITORY_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
TAG_PLACEHOLDERS = {"branch", "sha", "short_sha", "number", "timestamp"}
TAG_TEMPLATE_RE = re.compile(r"\{([^{}]*)\}")
MAX_SCRIPT_BYTES = 64 * 1024


def _django_to_drf(validator):
    from django.core.exceptions import ValidationError as DjangoValidationError

    def run(value):
        try:
            validator(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    return run


def validate_relative_path(value: str) -> str:
    if value.startswith("/") or ".." in value.split("/") or "\x00" in value:
        raise serializers.ValidationError("must be a path inside the repository")
    return value


def as_schema_says(field: serializers.Field, value: Any) -> Any:
    """A YAML plain scalar read as the field's type, whatever YAML 1.1 would make of it: a
    string field keeps `on`, `1.10`, `010` or `2024-01-01` as written (and `null` too when the
    field cannot be null); other fields get null for a YAML null word, true/false for YAML
    1.2's booleans, and otherwise the text for the field to parse."""
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return [as_schema_says(field.child, item) for item in value]
    if isinstance(field, serializers.DictField) and isinstance(value, dict):
        return {str(k): as_schema_says(field.child, v) for k, v in value.items()}
    if not isinstance(value, PlainScalar):
        return value
    if isinstance(field, serializers.CharField | serializers.ChoiceField):
        return None if value.is_null and field.allow_null else str(value)
    if value.is_null:
        return None
    if isinstance(field, serializers.BooleanField):
        return resolve_plain(value)
    return str(value)


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know: a typo must not be dropped silently. Values from a YAML
    body are read as each field's type says (`as_schema_says`)."""

    unknown_message = "unknown field"

    def to_internal_value(self, data):
        if isinstance(data, dict):
            data = {
                str(key): as_schema_says(self.fields[key], value) if key in self.fields else value
                for key, value in data.items()
            }
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(dict.fromkeys(unknown, self.unknown_message))
            # An omitted section is validated as empty, so its own fields' defaults apply
            # (DRF would take the bare default without validating it).
            data = {
                **{
                    name: {}
                    for name, field in self.fields.items()
                    if isinstance(field, serializers.Serializer) and name not in data
                },
                **data,
            }
        return super().to_internal_value(data)


class BranchRuleSerializer(StrictSerializer):
    pattern = serializers.CharField(
        max_length=MAX_REF_BYTES, validators=[_django_to_drf(validate_branch_pattern)]
    )
    match = serializers.ChoiceField(choices=["exact", "wildcard"], default="exact")

    def validate(self, attrs: dict) -> dict:
        if attrs["match"] == "exact" and any(ch in attrs["pattern"] for ch in "*?["):
            raise serializers.ValidationError(
                {"match": 'the pattern has wildcards; set match to "wildcard"'}
            )
        return attrs


class SourceSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=SourceKind.choices, default=SourceKind.GIT)
    trigger = serializers.ChoiceField(choices=TriggerMode.choices, default=TriggerMode.MANUAL)
    branches = BranchRuleSerializer(many=True, required=False, default=list)
    tags = serializers.ListField(
        child=serializers.CharField(
            max_length=MAX_REF_BYTES, validators=[_django_to_drf(validate_branch_pattern)]
        ),
        required=False,
        default=list,
    )
    pull_requests = serializers.BooleanField(default=False)
    image = serializers.CharField(max_length=500, allow_blank=True, allow_null=True, default="")
    concurrency = serializers.ChoiceField(
        choices=RunConcurrency.choices, default=RunConcurrency.QUEUE
    )


class BuildSerializer(StrictSerializer):
    dockerfile = serializers.CharField(
        max_length=500, default="Dockerfile", validators=[validate_relative_path]
    )
    context = serializers.CharField(
        max_length=500, default=".", validators=[validate_relative_path]
    )
    platform = serializers.ChoiceField(choices=Platform.choices, default=Platform.AMD64)
    cache = serializers.BooleanField(default=True)
    spot_instances = serializers.BooleanField(default=False)
    volume_size_gb = serializers.IntegerField(min_value=1, max_value=500, default=20)
    builder = serializers.ChoiceField(choices=BuilderKind.choices, default=BuilderKind.LOCAL)
    builder_environment = serializers.CharField(
        max_length=63, allow_blank=True, allow_null=True, default=""
    )


class PushSerializer(StrictSerializer):
    registry = serializers.CharField(max_length=63, allow_blank=True, allow_null=True, default="")
    repository = serializers.CharField(max_length=255, allow_blank=True, default="")
    tag_template = serializers.CharField(max_length=128, default="{short_sha}")

    def validate_repository(self, value: str) -> str:
        if value and not REPOSITORY_RE.match(value):
            raise serializers.ValidationError(
                f'"{value}" is not a valid repository name (lower-case path like team/app)'
            )
        return value

    def validate_tag_template(self, value: str) -> str:
        unknown = set(TAG_TEMPLATE_RE.findall(value)) - TAG_PLACEHOLDERS
        if unknown:
            raise serializers.ValidationError(
                f"unknown placeholder {{{sorted(unknown)[0]}}}; use "
                + ", ".join(f"{{{p}}}" for p in sorted(TAG_PLACEHOLDERS))
            )
        sample = TAG_TEMPLATE_RE.sub("x", value)
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", sample):
            raise serializers.ValidationError(
                "a tag may hold letters, digits, '_', '.' and '-' and must not start with . or -"
            )
        return value


class ApproversSerializer(StrictSerializer):
    users = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    groups = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class DeployEnvironmentSerializer(StrictSerializer):
    environment = serializers.CharField(max_length=63)
    mode = serializers.ChoiceField(choices=DeployMode.choices, default=DeployMode.AUTOMATIC)
    required_approvals = serializers.IntegerField(min_value=0, max_value=20, default=0)
    approvers = ApproversSerializer(required=False, default=dict)
    allow_self_approval = serializers.BooleanField(default=False)
    approval_expiry_hours = serializers.IntegerField(min_value=1, max_value=24 * 90, default=168)
    auto_rollback = serializers.BooleanField(default=True)


QUANTITY_RE = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


class ResourcesSerializer(StrictSerializer):
    cpu_request = serializers.CharField(allow_blank=True, default="")
    memory_request = serializers.CharField(allow_blank=True, default="")
    cpu_limit = serializers.CharField(allow_blank=True, default="")
    memory_limit = serializers.CharField(allow_blank=True, default="")

    def validate(self, attrs: dict) -> dict:
        for key, value in attrs.items():
            if value and not QUANTITY_RE.match(value):
                raise serializers.ValidationError(
                    {key: f'"{value}" is not a Kubernetes quantity (e.g. 250m, 128Mi, 1Gi)'}
                )
        return attrs


class DeploySerializer(StrictSerializer):
    port = serializers.IntegerField(min_value=1, max_value=65535, allow_null=True, default=None)
    replicas = serializers.IntegerField(min_value=0, max_value=100, default=1)
    cron_schedule = serializers.CharField(
        max_length=100, allow_blank=True, allow_null=True, default=""
    )
    cron_time_zone = serializers.CharField(
        max_length=64, default="UTC", validators=[_django_to_drf(validate_time_zone)]
    )
    cron_concurrency = serializers.ChoiceField(
        choices=CronConcurrency.choices, default=CronConcurrency.FORBID
    )
    resources = ResourcesSerializer(required=False, default=dict)
    health_check_path = serializers.CharField(max_length=255, allow_blank=True, default="")

    def validate_health_check_path(self, value: str) -> str:
        if value and not value.startswith("/"):
            raise serializers.ValidationError('a path starts with "/"')
        return value

    environments = DeployEnvironmentSerializer(many=True, required=False, default=list)


class ScriptsSerializer(StrictSerializer):
    pre_build = serializers.CharField(allow_blank=True, default="", trim_whitespace=False)
    post_build = serializers.CharField(allow_blank=True, default="", trim_whitespace=False)
    post_push = serializers.CharField(allow_blank=True, default="", trim_whitespace=False)
    post_deploy = serializers.CharField(allow_blank=True, default="", trim_whitespace=False)

    unknown_message = f"unknown hook; use one of {', '.join(SCRIPT_HOOKS)}"

    def validate(self, attrs: dict) -> dict:
        for hook, text in attrs.items():
            if len(text.encode()) > MAX_SCRIPT_BYTES:
                raise serializers.ValidationError({hook: "a script may be at most 64 KiB"})
        return attrs


class VariableSerializer(StrictSerializer):
    key = serializers.CharField(max_length=255)
    value = serializers.CharField(
        allow_blank=True, allow_null=True, required=False, trim_whitespace=False
    )
    secret = serializers.BooleanField(default=False)
    scope = serializers.ChoiceField(choices=VariableScope.choices, default=VariableScope.BUILD)
    secret_manager = serializers.ChoiceField(
        choices=[c for c, _ in SecretManager.choices], allow_null=True, default=""
    )
    secret_ref = serializers.CharField(max_length=500, allow_blank=True, default="")

    def validate_key(self, value: str) -> str:
        if not ENV_KEY_RE.match(value):
            raise serializers.ValidationError(
                f'"{value}" is not a valid variable name (letters, digits, _; not starting with a digit)'
            )
        return value


class ScannersSerializer(StrictSerializer):
    detect_secrets = serializers.BooleanField(default=False)
    trivy = serializers.BooleanField(default=False)
    sonarqube = serializers.BooleanField(default=False)
    fail_on = serializers.ChoiceField(choices=ScanThreshold.choices, default=ScanThreshold.HIGH)


class PositionSerializer(StrictSerializer):
    x = serializers.FloatField()
    y = serializers.FloatField()


class LayoutSerializer(StrictSerializer):
    positions = serializers.DictField(child=PositionSerializer(), required=False, default=dict)


class WorkflowDocumentSerializer(StrictSerializer):
    """Validates a whole workflow document against the service's project."""

    name = serializers.CharField(max_length=63, validators=[_django_to_drf(validate_name)])
    pipeline_type = serializers.ChoiceField(choices=PipelineType.choices, default=PipelineType.CI)
    source = SourceSerializer(required=False, default=dict)
    build = BuildSerializer(required=False, default=dict)
    push = PushSerializer(required=False, default=dict)
    deploy = DeploySerializer(required=False, default=dict)
    scripts = ScriptsSerializer(required=False, default=dict)
    variables = VariableSerializer(many=True, required=False, default=list)
    scanners = ScannersSerializer(required=False, default=dict)
    stage_timeout_minutes = serializers.IntegerField(min_value=1, max_value=180, default=60)
    layout = LayoutSerializer(required=False, default=dict)

    def __init__(self, *args, service, workflow: Workflow | None = None, **kwargs):
        self.service = service
        self.workflow = workflow
        super().__init__(*args, **kwargs)

    def validate(self, attrs: dict) -> dict:
        errors: dict[str, str] = {}
        project = self.service.project
        ptype = attrs["pipeline_type"]
        source, push, deploy = attrs["source"], attrs["push"], attrs["deploy"]

        others = self.service.workflows.filter(name=attrs["name"])
        if self.workflow:
            others = others.exclude(pk=self.workflow.pk)
        if others.exists():
            errors["name"] = f'this service already has a workflow named "{attrs["name"]}"'

        # Source
        if source["kind"] == SourceKind.GIT:
            if not self.service.repo_url:
                errors["source.kind"] = "the service has no Git repository; use a pre-built image"
        else:
            if ptype == PipelineType.CI:
                errors["source.kind"] = "a CI workflow builds an image; it cannot be deploy-only"
            if not (source.get("image") or self.service.image):
                errors["source.image"] = "a deploy-only workflow needs a pre-built image reference"
        if source["pull_requests"] and ptype != PipelineType.CI:
            errors["source.pull_requests"] = "only CI workflows build pull requests"
        if (
            source["trigger"] == TriggerMode.AUTOMATIC
            and source["kind"] == SourceKind.GIT
            and not (source["branches"] or source["tags"] or source["pull_requests"])
        ):
            errors["source.branches"] = (
                "an automatic trigger needs at least one branch rule, tag pattern or pull requests"
            )

        # Build
        build = attrs["build"]
        attrs["_builder_environment"] = None
        if build["builder"] == BuilderKind.KUBERNETES:
            name = build.get("builder_environment") or ""
            env = project.environments.filter(name=name).first() if name else None
            if source["kind"] != SourceKind.GIT:
                errors["build.builder"] = "a deploy-only workflow builds nothing"
            elif env is None:
                errors["build.builder_environment"] = (
                    f'environment "{name}" does not exist in project "{project.name}"'
                    if name
                    else "name the Kubernetes environment whose cluster runs the build"
                )
            elif env.target != "kubernetes":
                errors["build.builder_environment"] = (
                    f'environment "{name}" deploys to the local engine, not to a Kubernetes cluster'
                )
            elif not env.is_active:
                errors["build.builder_environment"] = f'environment "{name}" is inactive'
            attrs["_builder_environment"] = env
        elif build.get("builder_environment"):
            errors["build.builder_environment"] = (
                "only the Kubernetes builder runs in an environment"
            )

        # Push
        registry = None
        if source["kind"] == SourceKind.GIT:
            if not push.get("registry"):
                errors["push.registry"] = "choose a registry to push the image to"
            else:
                registry = project.registries.filter(name=push["registry"]).first()
                if registry is None:
                    errors["push.registry"] = (
                        f'registry "{push["registry"]}" does not exist in project "{project.name}"'
                    )
            if not push.get("repository"):
                errors["push.repository"] = "a repository name is required, e.g. team/app"
        attrs["_registry"] = registry

        # Deploy
        environments = deploy["environments"]
        if ptype == PipelineType.CI:
            if environments:
                errors["deploy.environments"] = (
                    "a CI workflow has no deploy; remove the environments or change the pipeline type"
                )
        else:
            if not environments:
                errors["deploy.environments"] = "a CD workflow deploys to at least one environment"
            if ptype == PipelineType.APP_CD and not deploy.get("port"):
                errors["deploy.port"] = "an App CD workflow needs the service port"
            if ptype == PipelineType.WORKER_CD and deploy.get("port"):
                errors["deploy.port"] = "a Queues & Workers CD workflow has no service port"
            if ptype == PipelineType.CRON_CD:
                from django.core.exceptions import ValidationError as DjangoValidationError

                try:
                    validate_cron(deploy.get("cron_schedule") or "")
                except DjangoValidationError as exc:
                    errors["deploy.cron_schedule"] = exc.messages[0]
            elif deploy.get("cron_schedule"):
                errors["deploy.cron_schedule"] = "only a Cron CD workflow has a schedule"
        resolved = []
        seen: set[str] = set()
        env_by_name = {e.name: e for e in project.environments.all()}
        User = get_user_model()
        member_ids = set(project.members.values_list("pk", flat=True))
        for index, step in enumerate(environments):
            path = f"deploy.environments[{index}]"
            env = env_by_name.get(step["environment"])
            if env is None:
                errors[f"{path}.environment"] = (
                    f'environment "{step["environment"]}" does not exist in project "{project.name}"'
                )
                continue
            if not env.is_active:
                errors[f"{path}.environment"] = f'environment "{env.name}" is inactive'
            if env.name in seen:
                errors[f"{path}.environment"] = f'environment "{env.name}" is listed twice'
            seen.add(env.name)
            usernames, groupnames = (
                step["approvers"].get("users", []),
                step["approvers"].get("groups", []),
            )
            users = list(User.objects.filter(username__in=usernames, is_active=True))
            groups = list(Group.objects.filter(name__in=groupnames))
            missing_users = sorted(set(usernames) - {u.username for u in users})
            missing_groups = sorted(set(groupnames) - {g.name for g in groups})
            # An approver who cannot see the project could never decide (approvals.services).
            outsiders = sorted(
                u.username for u in users if not u.is_superuser and u.pk not in member_ids
            )
            if missing_users:
                errors[f"{path}.approvers.users"] = f'no active user "{missing_users[0]}"'
            elif outsiders:
                errors[f"{path}.approvers.users"] = (
                    f'"{outsiders[0]}" is not a member of project "{project.name}"; '
                    "add them to the project first"
                )
            if missing_groups:
                errors[f"{path}.approvers.groups"] = f'no group "{missing_groups[0]}"'
            approvals = step["required_approvals"]
            if (users or groups) and approvals == 0:
                errors[f"{path}.required_approvals"] = (
                    "approvers are set: require at least 1 approval"
                )
            if approvals and not (usernames or groupnames):
                errors[f"{path}.approvers"] = (
                    f"{approvals} approval(s) required but no approvers designated"
                )
            if approvals and usernames and not groupnames and approvals > len(set(usernames)):
                errors[f"{path}.required_approvals"] = (
                    f"{approvals} approvals required but only {len(set(usernames))} approver(s) designated"
                )
            resolved.append({**step, "_environment": env, "_users": users, "_groups": groups})
        attrs["_deploy_steps"] = resolved

        # Variables
        existing = {}
        if self.workflow:
            existing = {v.key: v for v in self.workflow.variables.all()}
        keys: set[str] = set()
        for index, var in enumerate(attrs["variables"]):
            path = f"variables[{index}]"
            if var["key"] in keys:
                errors[f"{path}.key"] = f'"{var["key"]}" is defined twice'
            keys.add(var["key"])
            manager = var.get("secret_manager") or ""
            var["secret_manager"] = manager
            if manager:
                if not var["secret"]:
                    errors[f"{path}.secret"] = "a variable read from a secret manager is secret"
                if not var["secret_ref"]:
                    errors[f"{path}.secret_ref"] = "name the secret in the secret manager"
                if var.get("value"):
                    errors[f"{path}.value"] = "a secret-manager variable has no stored value"
            elif var["secret"] and var.get("value") in (None, ""):
                old = existing.get(var["key"])
                if old is None or not old.is_secret or not old.secret_value:
                    errors[f"{path}.value"] = "a secret variable needs a value"
            elif var["secret"] and len(var["value"]) < MIN_SECRET_VALUE_LENGTH:
                errors[f"{path}.value"] = short_secret_message(len(var["value"]))
            elif not var["secret"] and var.get("value") is None:
                var["value"] = ""

        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def upcoming_runs(workflow: Workflow, count: int = 3) -> list:
    """A Cron CD workflow's next `count` run times, aware, in its schedule's time zone; [] for
    other workflows or a schedule that cannot fire."""
    if workflow.pipeline_type != PipelineType.CRON_CD or not workflow.cron_schedule:
        return []
    from django.utils import timezone

    from integrations.local_engine.schedule import CronScheduleError, next_runs

    try:
        return next_runs(workflow.cron_schedule, workflow.cron_time_zone, timezone.now(), count)
    except CronScheduleError:
        return []


def workflow_document(workflow: Workflow) -> dict[str, Any]:
    """The document for a stored workflow. Secret values are never included."""
    service = workflow.service
    steps = workflow.deploy_steps.select_related("environment").prefetch_related(
        "approver_users", "approver_groups"
    )
    return {
        "id": workflow.pk,
        "name": workflow.name,
        "service": {"id": service.pk, "name": service.name},
        "project": {"id": service.project_id, "name": service.project.name},
        "is_default": workflow.is_default,
        "pipeline_type": workflow.pipeline_type,
        "source": {
            "kind": workflow.source_kind,
            "trigger": workflow.trigger_mode,
            "branches": workflow.branch_rules,
            "tags": workflow.tag_patterns,
            "pull_requests": workflow.build_pull_requests,
            "image": workflow.source_image or None,
            "concurrency": workflow.run_concurrency,
        },
        "build": {
            "dockerfile": workflow.dockerfile,
            "context": workflow.build_context,
            "platform": workflow.platform,
            "cache": workflow.cache_enabled,
            "spot_instances": workflow.spot_instances,
            "volume_size_gb": workflow.volume_size_gb,
            "builder": workflow.builder,
            "builder_environment": (
                workflow.builder_environment.name if workflow.builder_environment else None
            ),
        },
        "push": {
            "registry": workflow.registry.name if workflow.registry else None,
            "repository": workflow.repository,
            "tag_template": workflow.tag_template,
        },
        "deploy": {
            "port": workflow.service_port,
            "replicas": workflow.replicas,
            "cron_schedule": workflow.cron_schedule or None,
            "cron_time_zone": workflow.cron_time_zone,
            "cron_concurrency": workflow.cron_concurrency,
            "resources": {
                key: (workflow.resources or {}).get(key, "")
                for key in ("cpu_request", "memory_request", "cpu_limit", "memory_limit")
            },
            "health_check_path": workflow.health_check_path,
            "environments": [
                {
                    "environment": step.environment.name,
                    "mode": step.mode,
                    "required_approvals": step.required_approvals,
                    "approvers": {
                        "users": sorted(u.username for u in step.approver_users.all()),
                        "groups": sorted(g.name for g in step.approver_groups.all()),
                    },
                    "allow_self_approval": step.allow_self_approval,
                    "approval_expiry_hours": step.approval_expiry_hours,
                    "auto_rollback": step.auto_rollback,
                }
                for step in steps
            ],
        },
        "scripts": {hook: workflow.scripts.get(hook, "") for hook in SCRIPT_HOOKS},
        "variables": [
            {
                "key": var.key,
                "value": None if var.is_secret else var.value,
                "secret": var.is_secret,
                "scope": var.scope,
                "secret_manager": var.secret_manager or None,
                "secret_ref": var.secret_ref,
            }
            for var in workflow.variables.all()
        ],
        "scanners": {
            "detect_secrets": workflow.scan_detect_secrets,
            "trivy": workflow.scan_trivy,
            "sonarqube": workflow.scan_sonarqube,
            "fail_on": workflow.scan_fail_on,
        },
        "stage_timeout_minutes": workflow.stage_timeout_minutes,
        "next_runs": [t.isoformat() for t in upcoming_runs(workflow)],
        "layout": workflow.layout or {"positions": {}},
        "created_at": workflow.created_at.isoformat() if workflow.created_at else None,
        "updated_at": workflow.updated_at.isoformat() if workflow.updated_at else None,
        "version": workflow.version,
        "updated_by": workflow.updated_by.username if workflow.updated_by else None,
    }
