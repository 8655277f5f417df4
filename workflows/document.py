"""The whole workflow definition as one document: what the builder loads and saves, and what
export/import carry as YAML. Validation errors name the field path, e.g.
`deploy.environments[2].environment: environment "prod" is inactive`.

The document is described once, by the serializers below: their `source=` map each key to the
Workflow's column (or its deploy steps and variables), so the same classes render a stored
workflow (`workflow_document`) and turn a sent document into what `do_save_workflow` writes.
"""

from __future__ import annotations

import re
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from atmosly.documents import PlainScalar, resolve_plain
from integrations.local_engine.schedule import CronScheduleError, next_runs
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
    Service,
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
    def run(value):
        try:
            validator(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    return run


def validate_relative_path(value: str) -> None:
    if value.startswith("/") or ".." in value.split("/") or "\x00" in value:
        raise serializers.ValidationError("must be a path inside the repository")


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


def document_service(field: serializers.Field) -> Service:
    """The service whose workflow document `field` belongs to (its root serializer's)."""
    service = cast("WorkflowDocumentSerializer", field.root).service
    assert service is not None  # a document is always checked within its service
    return service


class BlankAsNull(serializers.Field):
    """A text stored blank that the document shows as null: null is accepted and stored as ""."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        value = super().run_validation(data)
        return "" if value is None else value

    def to_representation(self, value: Any) -> Any:
        return super().to_representation(value) or None


class BlankAsNullCharField(BlankAsNull, serializers.CharField):
    pass


class BlankAsNullChoiceField(BlankAsNull, serializers.ChoiceField):
    pass


class NameOf(BlankAsNullCharField):
    """A row of the project that the document names (an environment, a registry): read as its
    name, null for none. Written as the name; the section's `check` puts the row in its place."""

    def to_representation(self, row) -> str:
        return getattr(row, "name", row)  # a name not yet resolved renders as itself


class NamesOf(serializers.ListField):
    """Rows named by a list (approver users by username, groups by name): read sorted. Written
    as the names; the section's `check` puts the rows in their place."""

    def __init__(self, *, name_attr: str, **kwargs):
        self.name_attr = name_attr
        super().__init__(child=serializers.CharField(), **kwargs)

    def to_representation(self, rows) -> list[str]:
        rows = rows.all() if hasattr(rows, "all") else rows
        return sorted(getattr(row, self.name_attr) for row in rows)


def within(section: str, errors: dict[str, str]) -> dict[str, str]:
    """`errors` keyed by paths inside `section`, keyed by their paths in the document."""
    return {
        (f"{section}{path}" if path.startswith("[") else f"{section}.{path}"): message
        for path, message in errors.items()
    }


# Each section below maps its keys to the Workflow's columns with `source=`: read, it renders a
# stored workflow; written, its validated data are those columns, ready for `do_save_workflow`.
# A section's `check(doc)` runs after every field parsed (so a type error elsewhere still hides
# it); it sees the whole validated document (its rules depend on the pipeline type and the
# source), returns its errors keyed by paths inside the section, and replaces the names of rows
# with the rows.


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
    kind = serializers.ChoiceField(
        source="source_kind", choices=SourceKind.choices, default=SourceKind.GIT
    )
    trigger = serializers.ChoiceField(
        source="trigger_mode", choices=TriggerMode.choices, default=TriggerMode.MANUAL
    )
    branches = BranchRuleSerializer(source="branch_rules", many=True, required=False, default=list)
    tags = serializers.ListField(
        source="tag_patterns",
        child=serializers.CharField(
            max_length=MAX_REF_BYTES, validators=[_django_to_drf(validate_branch_pattern)]
        ),
        required=False,
        default=list,
    )
    pull_requests = serializers.BooleanField(source="build_pull_requests", default=False)
    image = BlankAsNullCharField(
        source="source_image", max_length=500, allow_blank=True, allow_null=True, default=""
    )
    concurrency = serializers.ChoiceField(
        source="run_concurrency", choices=RunConcurrency.choices, default=RunConcurrency.QUEUE
    )

    def check(self, doc: dict[str, Any]) -> dict[str, str]:
        service = document_service(self)
        ptype, kind = doc["pipeline_type"], doc["source_kind"]
        errors: dict[str, str] = {}
        if kind == SourceKind.GIT:
            if not service.repo_url:
                errors["kind"] = "the service has no Git repository; use a pre-built image"
        else:
            if ptype == PipelineType.CI:
                errors["kind"] = "a CI workflow builds an image; it cannot be deploy-only"
            if not (doc["source_image"] or service.image):
                errors["image"] = "a deploy-only workflow needs a pre-built image reference"
        if doc["build_pull_requests"] and ptype != PipelineType.CI:
            errors["pull_requests"] = "only CI workflows build pull requests"
        if (
            doc["trigger_mode"] == TriggerMode.AUTOMATIC
            and kind == SourceKind.GIT
            and not (doc["branch_rules"] or doc["tag_patterns"] or doc["build_pull_requests"])
        ):
            errors["branches"] = (
                "an automatic trigger needs at least one branch rule, tag pattern or pull requests"
            )
        return errors


class BuildSerializer(StrictSerializer):
    dockerfile = serializers.CharField(
        max_length=500, default="Dockerfile", validators=[validate_relative_path]
    )
    # DRF's metaclass takes declared fields out of the class, so this does not shadow
    # Serializer.context; mypy sees only the class body.
    context = serializers.CharField(  # type: ignore[assignment]
        source="build_context", max_length=500, default=".", validators=[validate_relative_path]
    )
    platform = serializers.ChoiceField(choices=Platform.choices, default=Platform.AMD64)
    cache = serializers.BooleanField(source="cache_enabled", default=True)
    spot_instances = serializers.BooleanField(default=False)
    volume_size_gb = serializers.IntegerField(min_value=1, max_value=500, default=20)
    builder = serializers.ChoiceField(choices=BuilderKind.choices, default=BuilderKind.LOCAL)
    builder_environment = NameOf(max_length=63, allow_blank=True, allow_null=True, default="")

    def check(self, doc: dict[str, Any]) -> dict[str, str]:
        """The Kubernetes builder runs in an active Kubernetes environment of the project."""
        project = document_service(self).project
        errors: dict[str, str] = {}
        name = doc["builder_environment"]
        doc["builder_environment"] = None
        if doc["builder"] == BuilderKind.KUBERNETES:
            env = project.environments.filter(name=name).first() if name else None
            if doc["source_kind"] != SourceKind.GIT:
                errors["builder"] = "a deploy-only workflow builds nothing"
            elif env is None:
                errors["builder_environment"] = (
                    f'environment "{name}" does not exist in project "{project.name}"'
                    if name
                    else "name the Kubernetes environment whose cluster runs the build"
                )
            elif env.target != "kubernetes":
                errors["builder_environment"] = (
                    f'environment "{name}" deploys to the local engine, not to a Kubernetes cluster'
                )
            elif not env.is_active:
                errors["builder_environment"] = f'environment "{name}" is inactive'
            doc["builder_environment"] = env
        elif name:
            errors["builder_environment"] = "only the Kubernetes builder runs in an environment"
        return errors


class PushSerializer(StrictSerializer):
    registry = NameOf(max_length=63, allow_blank=True, allow_null=True, default="")
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

    def check(self, doc: dict[str, Any]) -> dict[str, str]:
        """A Git source pushes to a registry of the project; a deploy-only one pushes nothing."""
        project = document_service(self).project
        errors: dict[str, str] = {}
        name = doc["registry"]
        doc["registry"] = None
        if doc["source_kind"] == SourceKind.GIT:
            if not name:
                errors["registry"] = "choose a registry to push the image to"
            else:
                doc["registry"] = project.registries.filter(name=name).first()
                if doc["registry"] is None:
                    errors["registry"] = (
                        f'registry "{name}" does not exist in project "{project.name}"'
                    )
            if not doc["repository"]:
                errors["repository"] = "a repository name is required, e.g. team/app"
        return errors


class ApproversSerializer(StrictSerializer):
    users = NamesOf(source="approver_users", name_attr="username", required=False, default=list)
    groups = NamesOf(source="approver_groups", name_attr="name", required=False, default=list)


class DeployStepListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        if hasattr(data, "select_related"):  # a workflow's deploy_steps
            data = data.select_related("environment").prefetch_related(
                "approver_users", "approver_groups"
            )
        return super().to_representation(data)


class DeployEnvironmentSerializer(StrictSerializer):
    environment = NameOf(max_length=63)
    mode = serializers.ChoiceField(choices=DeployMode.choices, default=DeployMode.AUTOMATIC)
    required_approvals = serializers.IntegerField(min_value=0, max_value=20, default=0)
    approvers = ApproversSerializer(source="*", required=False, default=dict)
    allow_self_approval = serializers.BooleanField(default=False)
    approval_expiry_hours = serializers.IntegerField(min_value=1, max_value=24 * 90, default=168)
    auto_rollback = serializers.BooleanField(default=True)

    class Meta:
        list_serializer_class = DeployStepListSerializer


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
    port = serializers.IntegerField(
        source="service_port", min_value=1, max_value=65535, allow_null=True, default=None
    )
    replicas = serializers.IntegerField(min_value=0, max_value=100, default=1)
    cron_schedule = BlankAsNullCharField(
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
    environments = DeployEnvironmentSerializer(
        source="deploy_steps", many=True, required=False, default=list
    )

    def validate_health_check_path(self, value: str) -> str:
        if value and not value.startswith("/"):
            raise serializers.ValidationError('a path starts with "/"')
        return value

    def check(self, doc: dict[str, Any]) -> dict[str, str]:
        """What each pipeline type deploys (port, schedule, at least one environment), then
        each environment step: an active environment of the project, listed once, with
        approvers who are active members and enough of them for the approvals required."""
        errors: dict[str, str] = {}
        ptype, steps = doc["pipeline_type"], doc["deploy_steps"]
        if ptype == PipelineType.CI:
            if steps:
                errors["environments"] = (
                    "a CI workflow has no deploy; remove the environments or change the pipeline type"
                )
        else:
            if not steps:
                errors["environments"] = "a CD workflow deploys to at least one environment"
            if ptype == PipelineType.APP_CD and not doc["service_port"]:
                errors["port"] = "an App CD workflow needs the service port"
            if ptype == PipelineType.WORKER_CD and doc["service_port"]:
                errors["port"] = "a Queues & Workers CD workflow has no service port"
            if ptype == PipelineType.CRON_CD:
                try:
                    validate_cron(doc["cron_schedule"])
                except DjangoValidationError as exc:
                    errors["cron_schedule"] = exc.messages[0]
            elif doc["cron_schedule"]:
                errors["cron_schedule"] = "only a Cron CD workflow has a schedule"
        project = document_service(self).project
        env_by_name = {e.name: e for e in project.environments.all()}
        member_ids = set(project.members.values_list("pk", flat=True))
        seen: set[str] = set()
        for index, step in enumerate(steps):
            path = f"environments[{index}]"
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
            errors.update(self.check_approvers(path, step, member_ids))
            step["environment"] = env
        return errors

    def check_approvers(
        self, path: str, step: dict[str, Any], member_ids: set[int]
    ) -> dict[str, str]:
        errors: dict[str, str] = {}
        project = document_service(self).project
        usernames, groupnames = step["approver_users"], step["approver_groups"]
        users = list(get_user_model().objects.filter(username__in=usernames, is_active=True))
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
            errors[f"{path}.required_approvals"] = "approvers are set: require at least 1 approval"
        if approvals and not (usernames or groupnames):
            errors[f"{path}.approvers"] = (
                f"{approvals} approval(s) required but no approvers designated"
            )
        if approvals and usernames and not groupnames and approvals > len(set(usernames)):
            errors[f"{path}.required_approvals"] = (
                f"{approvals} approvals required but only {len(set(usernames))} approver(s) designated"
            )
        # The rows in the order and number named, so the document they render is the one sent.
        by_username, by_name = {u.username: u for u in users}, {g.name: g for g in groups}
        step["approver_users"] = [by_username[n] for n in usernames if n in by_username]
        step["approver_groups"] = [by_name[n] for n in groupnames if n in by_name]
        return errors


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


class VariableListSerializer(serializers.ListSerializer):
    def check(self, doc: dict[str, Any]) -> dict[str, str]:
        """Keys are unique; a secret has a value (a stored one is kept when none is sent) long
        enough to mask, unless a secret manager holds it, which needs the secret's name."""
        workflow = cast("WorkflowDocumentSerializer", self.root).workflow
        existing = {v.key: v for v in workflow.variables.all()} if workflow else {}
        errors: dict[str, str] = {}
        keys: set[str] = set()
        for index, var in enumerate(doc["variables"]):
            path = f"[{index}]"
            if var["key"] in keys:
                errors[f"{path}.key"] = f'"{var["key"]}" is defined twice'
            keys.add(var["key"])
            value = var.get("value")
            if var["secret_manager"]:
                if not var["is_secret"]:
                    errors[f"{path}.secret"] = "a variable read from a secret manager is secret"
                if not var["secret_ref"]:
                    errors[f"{path}.secret_ref"] = "name the secret in the secret manager"
                if value:
                    errors[f"{path}.value"] = "a secret-manager variable has no stored value"
            elif var["is_secret"] and value in (None, ""):
                old = existing.get(var["key"])
                if old is None or not old.is_secret or not old.secret_value:
                    errors[f"{path}.value"] = "a secret variable needs a value"
            elif var["is_secret"] and len(value) < MIN_SECRET_VALUE_LENGTH:
                errors[f"{path}.value"] = short_secret_message(len(value))
        return errors


# A variable's value, plain or secret, at most 48 KiB: GitHub Actions' limit for secrets and
# variables. Larger belongs in a file of the repository or a secret manager.
MAX_VARIABLE_VALUE_LENGTH = 48 * 1024


class VariableSerializer(StrictSerializer):
    key = serializers.CharField(max_length=255)
    value = serializers.CharField(
        allow_blank=True,
        allow_null=True,
        required=False,
        trim_whitespace=False,
        max_length=MAX_VARIABLE_VALUE_LENGTH,
    )
    secret = serializers.BooleanField(source="is_secret", default=False)
    scope = serializers.ChoiceField(choices=VariableScope.choices, default=VariableScope.BUILD)
    secret_manager = BlankAsNullChoiceField(
        choices=[c for c, _ in SecretManager.choices], allow_null=True, default=""
    )
    secret_ref = serializers.CharField(max_length=500, allow_blank=True, default="")

    class Meta:
        list_serializer_class = VariableListSerializer

    def validate_key(self, value: str) -> str:
        if not ENV_KEY_RE.match(value):
            raise serializers.ValidationError(
                f'"{value}" is not a valid variable name (letters, digits, _; not starting with a digit)'
            )
        return value

    def to_representation(self, variable) -> dict[str, Any]:
        data = super().to_representation(variable)
        if variable.is_secret:  # secret values never leave the server
            data["value"] = None
        return data


class ScannersSerializer(StrictSerializer):
    detect_secrets = serializers.BooleanField(source="scan_detect_secrets", default=False)
    trivy = serializers.BooleanField(source="scan_trivy", default=False)
    sonarqube = serializers.BooleanField(source="scan_sonarqube", default=False)
    fail_on = serializers.ChoiceField(
        source="scan_fail_on", choices=ScanThreshold.choices, default=ScanThreshold.HIGH
    )


class PositionSerializer(StrictSerializer):
    x = serializers.FloatField()
    y = serializers.FloatField()


class LayoutSerializer(StrictSerializer):
    positions = serializers.DictField(child=PositionSerializer(), required=False, default=dict)


class WorkflowDocumentSerializer(StrictSerializer):
    """The editable workflow document, described once for both directions: validated, its data
    are the Workflow's columns plus `deploy_steps` and `variables` (each a list of their rows'
    fields) for `do_save_workflow`; given a workflow, it renders the stored document.

    Validation is against the service's project: first every field, then each section's
    `check` in document order; errors are keyed by the field path, e.g. "deploy.cron_schedule"."""

    name = serializers.CharField(max_length=63, validators=[_django_to_drf(validate_name)])
    pipeline_type = serializers.ChoiceField(choices=PipelineType.choices, default=PipelineType.CI)
    # A declared field, not Field.source (DRF's metaclass takes it out of the class).
    source = SourceSerializer(source="*", required=False, default=dict)  # type: ignore[assignment]
    build = BuildSerializer(source="*", required=False, default=dict)
    push = PushSerializer(source="*", required=False, default=dict)
    deploy = DeploySerializer(source="*", required=False, default=dict)
    scripts = ScriptsSerializer(required=False, default=dict)
    variables = VariableSerializer(many=True, required=False, default=list)
    scanners = ScannersSerializer(source="*", required=False, default=dict)
    stage_timeout_minutes = serializers.IntegerField(min_value=1, max_value=180, default=60)
    layout = LayoutSerializer(required=False, default=dict)

    def __init__(self, *args, service=None, workflow: Workflow | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.workflow = workflow
        self.service = service if service is not None else getattr(self.instance, "service", None)

    def validate(self, attrs: dict) -> dict:
        errors = self.check(attrs)
        for name, field in self.fields.items():
            if hasattr(field, "check"):
                errors.update(within(name, field.check(attrs)))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def check(self, doc: dict[str, Any]) -> dict[str, str]:
        assert self.service is not None  # a document is always checked within its service
        others = self.service.workflows.filter(name=doc["name"])
        if self.workflow:
            others = others.exclude(pk=self.workflow.pk)
        if others.exists():
            return {"name": f'this service already has a workflow named "{doc["name"]}"'}
        return {}


class IdAndName(serializers.Field):
    def to_representation(self, row) -> dict[str, Any]:
        return {"id": row.pk, "name": row.name}


class IsoDateTime(serializers.Field):
    def to_representation(self, value) -> str:
        return value.isoformat()


class StoredWorkflowSerializer(WorkflowDocumentSerializer):
    """The document as the API answers it: the editable sections plus where the workflow lives
    and its version, which are read-only (a document sent back with them is taken without)."""

    id = serializers.IntegerField(read_only=True)
    service = IdAndName(read_only=True)
    project = IdAndName(source="service.project", read_only=True)
    is_default = serializers.BooleanField(read_only=True)
    next_runs = serializers.SerializerMethodField()
    created_at = IsoDateTime(read_only=True)
    updated_at = IsoDateTime(read_only=True)
    version = serializers.IntegerField(read_only=True)
    updated_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    # The answer's key order since the first release; a key not listed goes last.
    ANSWER_ORDER = (
        "id", "name", "service", "project", "is_default", "pipeline_type", "source", "build",
        "push", "deploy", "scripts", "variables", "scanners", "stage_timeout_minutes",
        "next_runs", "layout", "created_at", "updated_at", "version", "updated_by",
    )  # fmt: skip

    def get_next_runs(self, workflow: Workflow) -> list[str]:
        return [t.isoformat() for t in upcoming_runs(workflow)]

    def to_representation(self, workflow: Workflow) -> dict[str, Any]:
        data = super().to_representation(workflow)
        place = {key: index for index, key in enumerate(self.ANSWER_ORDER)}
        return dict(sorted(data.items(), key=lambda item: place.get(item[0], len(place))))


READ_ONLY_KEYS = frozenset(
    name for name, field in StoredWorkflowSerializer._declared_fields.items() if field.read_only
)


def upcoming_runs(workflow: Workflow, count: int = 3) -> list:
    """A Cron CD workflow's next `count` run times, aware, in its schedule's time zone; [] for
    other workflows or a schedule that cannot fire."""
    if workflow.pipeline_type != PipelineType.CRON_CD or not workflow.cron_schedule:
        return []

    try:
        return next_runs(workflow.cron_schedule, workflow.cron_time_zone, timezone.now(), count)
    except CronScheduleError:
        return []


def workflow_document(workflow: Workflow) -> dict[str, Any]:
    """The document for a stored workflow, as GET answers it. Secret values are never included."""
    return StoredWorkflowSerializer(workflow).to_representation(workflow)
