"""Changes to projects, services and workflows. Views call these; each is one transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import F
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError

from workflows.document import WorkflowDocumentSerializer, workflow_document
from workflows.models import (
    CIVariable,
    PipelineType,
    Project,
    Service,
    SourceKind,
    Workflow,
    WorkflowEnvironment,
)
from workflows.permissions import ADD_APPROVER, administers
from workflows.serializers import ProjectSerializer
from workflows.signals import approvers_changed

DEFAULT_WORKFLOW_NAME = "default"
ADD_PROJECT = "workflows.add_project"


def check_create_project(user, data: dict[str, Any]) -> Project:
    """Validates `name` and `description` as `POST /api/projects/` does (needs "Can add
    project"), then creates the project with `user` as its first member."""
    if not user.has_perm(ADD_PROJECT):
        raise PermissionDenied('Creating a project needs the "Can add project" permission.')
    serializer = ProjectSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return do_create_project(serializer.validated_data, creator=user)


@transaction.atomic
def do_create_project(data: dict[str, Any], creator=None) -> Project:
    project = Project.objects.create(**data)
    if creator is not None:
        project.members.add(creator)
    return project


def grantable_roles(actor):
    """The roles (groups) `actor` may give: all for a superuser; otherwise the groups whose
    permissions `actor` holds too, so no one hands out more than they have. Roles are Django
    groups and so apply in every project the member belongs to."""
    groups = Group.objects.prefetch_related("permissions__content_type").order_by("name")
    if actor.is_superuser:
        return list(groups)
    held = actor.get_all_permissions()
    return [
        group
        for group in groups
        if all(f"{p.content_type.app_label}.{p.codename}" in held for p in group.permissions.all())
    ]


def check_add_member(actor, project: Project, username: str, role: str = "") -> Any:
    """Adds the active user `username` to `project`, with the role (group) named `role` if
    given. Only who administers the project may (`administers`); 400 names the field
    (`username`, `role`)."""
    if not administers(actor, project):
        raise PermissionDenied("Only an administrator of this project can change its members.")
    user = get_user_model().objects.filter(username=(username or "").strip(), is_active=True)
    user = user.first()
    if user is None:
        raise DRFValidationError({"username": [f'no active user named "{username}"']})
    group = None
    if role:
        group = next((g for g in grantable_roles(actor) if g.name == role), None)
        if group is None:
            raise DRFValidationError(
                {"role": [f'"{role}" is not a role you may give (it needs permissions you lack)']}
            )
    do_add_member(project, user, group)
    return user


@transaction.atomic
def do_add_member(project: Project, user, group=None) -> None:
    project.members.add(user)
    if group is not None:
        user.groups.add(group)


def check_remove_member(actor, project: Project, username: str) -> None:
    """Removes `username` from the project's members (their roles stay: they are global).
    An administrator cannot remove themself, so a project always keeps one."""
    if not administers(actor, project):
        raise PermissionDenied("Only an administrator of this project can change its members.")
    user = project.members.filter(username=username).first()
    if user is None:
        raise DRFValidationError({"username": [f'"{username}" is not a member']})
    if user.pk == actor.pk:
        raise DRFValidationError({"username": ["you cannot remove yourself"]})
    project.members.remove(user)


@transaction.atomic
def do_create_service(service: Service) -> Service:
    """Saves a new service together with its default workflow."""
    service.save()
    registry = service.project.registries.order_by("pk").first()
    git = bool(service.repo_url)
    Workflow.objects.create(
        service=service,
        name=DEFAULT_WORKFLOW_NAME,
        is_default=True,
        pipeline_type=PipelineType.CI if git else PipelineType.APP_CD,
        source_kind=SourceKind.GIT if git else SourceKind.IMAGE,
        branch_rules=[{"pattern": service.default_branch, "match": "exact"}] if git else [],
        source_image=service.image,
        registry=registry if git else None,
        repository=f"{service.project.name}/{service.name}" if git else "",
    )
    return service


# Parts of the document that describe where it lives, not what it is.
READ_ONLY_KEYS = frozenset(
    {
        "id",
        "service",
        "project",
        "is_default",
        "created_at",
        "updated_at",
        "next_runs",
        "version",
        "updated_by",
    }
)


class VersionConflict(APIException):
    """The workflow was saved by someone else since the version the client edited (HTTP 412)."""

    status_code = 412
    default_code = "version_conflict"

    def __init__(self, workflow: Workflow):
        who = workflow.updated_by.username if workflow.updated_by else "someone"
        when = workflow.updated_at.isoformat(timespec="seconds") if workflow.updated_at else ""
        self.body = {
            "detail": f"{who} saved this workflow (version {workflow.version}) at {when} "
            "since you opened it. Reload to see their change, or overwrite it.",
            "version": workflow.version,
            "updated_by": workflow.updated_by.username if workflow.updated_by else None,
            "updated_at": when,
        }
        super().__init__(self.body["detail"])


def editable_part(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in READ_ONLY_KEYS}


def approvers_of(document: dict[str, Any]) -> dict[str, Any]:
    return {
        step["environment"]: (
            sorted(step.get("approvers", {}).get("users", [])),
            sorted(step.get("approvers", {}).get("groups", [])),
            step.get("required_approvals", 0),
        )
        for step in document.get("deploy", {}).get("environments", [])
        if step.get("required_approvals")
        or step.get("approvers", {}).get("users")
        or step.get("approvers", {}).get("groups")
    }


def check_workflow_document(
    user,
    service: Service,
    data: dict[str, Any],
    workflow: Workflow | None = None,
    partial: bool = False,
) -> dict[str, Any]:
    """Validates a workflow document for `service` and the user's right to change its
    approvers; returns the validated document for `do_save_workflow`. The API and the admin
    both call this, so both refuse the same documents with the same field paths and messages.

    Raises DRF ValidationError (400, keyed by field path) or PermissionDenied (403)."""
    if not isinstance(data, dict):
        raise DRFValidationError({"non_field_errors": ["the workflow document must be a mapping"]})
    current = workflow_document(workflow) if workflow else {}
    if partial and workflow:
        data = {**current, **data}
    data = editable_part(data)
    serializer = WorkflowDocumentSerializer(data=data, service=service, workflow=workflow)
    serializer.is_valid(raise_exception=True)
    if approvers_of(serializer.validated_data) != approvers_of(current) and not user.has_perm(
        ADD_APPROVER
    ):
        raise PermissionDenied(
            'Changing the approvers of a workflow needs the "Add approver to workflows" permission.'
        )
    return serializer.validated_data


def check_save_workflow(
    user,
    service: Service,
    data: dict[str, Any],
    workflow: Workflow | None = None,
    partial: bool = False,
    expected_version: int | None = None,
) -> Workflow:
    """Validates a workflow document (and the right to change approvers), then saves it.

    `expected_version` (the API's If-Match) must be the stored version, else VersionConflict
    (412) is raised and nothing is written.
    """
    doc = check_workflow_document(user, service, data, workflow, partial)
    return do_save_workflow(service, doc, workflow, actor=user, expected_version=expected_version)


@transaction.atomic
def do_save_workflow(
    service: Service,
    doc: dict[str, Any],
    workflow: Workflow | None = None,
    actor=None,
    expected_version: int | None = None,
) -> Workflow:
    """Writes a validated document: the workflow row, its deploy steps and its variables.

    The version is claimed with one conditional UPDATE, so of two saves from the same version
    exactly one wins; the other raises VersionConflict.
    """
    if workflow is not None and workflow.pk:
        expected = workflow.version if expected_version is None else expected_version
        claimed = Workflow.objects.filter(pk=workflow.pk, version=expected).update(
            version=F("version") + 1
        )
        if not claimed:
            raise VersionConflict(Workflow.objects.select_related("updated_by").get(pk=workflow.pk))
        workflow.version = expected + 1
    workflow = workflow or Workflow(service=service)
    if actor is not None and getattr(actor, "is_authenticated", False):
        workflow.updated_by = actor
    source, build, push, deploy = doc["source"], doc["build"], doc["push"], doc["deploy"]
    scanners = doc["scanners"]
    workflow.name = doc["name"]
    workflow.pipeline_type = doc["pipeline_type"]
    workflow.source_kind = source["kind"]
    workflow.trigger_mode = source["trigger"]
    workflow.branch_rules = [dict(rule) for rule in source["branches"]]
    workflow.tag_patterns = list(source["tags"])
    workflow.build_pull_requests = source["pull_requests"]
    workflow.source_image = source.get("image") or ""
    workflow.run_concurrency = source["concurrency"]
    workflow.dockerfile = build["dockerfile"]
    workflow.build_context = build["context"]
    workflow.platform = build["platform"]
    workflow.cache_enabled = build["cache"]
    workflow.spot_instances = build["spot_instances"]
    workflow.volume_size_gb = build["volume_size_gb"]
    workflow.builder = build["builder"]
    workflow.builder_environment = doc["_builder_environment"]
    workflow.registry = doc["_registry"]
    workflow.repository = push.get("repository") or ""
    workflow.tag_template = push["tag_template"]
    workflow.service_port = deploy.get("port")
    workflow.replicas = deploy["replicas"]
    workflow.cron_schedule = deploy.get("cron_schedule") or ""
    workflow.cron_concurrency = deploy["cron_concurrency"]
    workflow.cron_time_zone = deploy["cron_time_zone"]
    workflow.resources = dict(deploy["resources"])
    workflow.health_check_path = deploy["health_check_path"]
    workflow.scripts = dict(doc["scripts"])
    workflow.scan_detect_secrets = scanners["detect_secrets"]
    workflow.scan_trivy = scanners["trivy"]
    workflow.scan_sonarqube = scanners["sonarqube"]
    workflow.scan_fail_on = scanners["fail_on"]
    workflow.stage_timeout_minutes = doc["stage_timeout_minutes"]
    workflow.layout = {"positions": dict(doc["layout"].get("positions", {}))}
    if not service.workflows.exists():
        workflow.is_default = True
    workflow.save()

    save_deploy_steps(workflow, doc["_deploy_steps"], actor)

    # Secret values left out of the document keep what is stored (they are never sent back).
    stored = {v.key: v for v in workflow.variables.all()}
    workflow.variables.exclude(key__in=[v["key"] for v in doc["variables"]]).delete()
    for var in doc["variables"]:
        row = stored.get(var["key"]) or CIVariable(workflow=workflow, key=var["key"])
        row.is_secret = var["secret"]
        row.scope = var["scope"]
        row.secret_manager = var["secret_manager"]
        row.secret_ref = var["secret_ref"]
        if var["secret"]:
            row.value = ""
            if var["secret_manager"]:
                row.secret_value = ""
            elif var.get("value"):
                row.secret_value = var["value"]
        else:
            row.value = var.get("value") or ""
            row.secret_value = ""
        row.save()
    return workflow


def validate_for_run(workflow: Workflow) -> None:
    """Re-checks the stored definition before a run: environments may have been deactivated,
    users removed, or rows edited outside the API since it was saved.

    The document names its registry and environments, so it resolves them again by name in the
    project; the stored links must be those same rows. A link to another project's registry or
    environment (written straight to the database) would hand that project's credentials to
    this run. Raises a DRF ValidationError keyed by field path."""
    project_id = workflow.service.project_id
    errors: dict[str, str] = {}
    if workflow.registry_id and workflow.registry.project_id != project_id:
        errors["push.registry"] = "the registry belongs to another project"
    image_registry = workflow.service.image_registry
    if image_registry is not None and image_registry.project_id != project_id:
        errors["service.image_registry"] = "the registry belongs to another project"
    builder_env = workflow.builder_environment
    if builder_env is not None and builder_env.project_id != project_id:
        errors["build.builder_environment"] = "the environment belongs to another project"
    steps = workflow.deploy_steps.select_related("environment")
    for index, step in enumerate(steps):
        if step.environment.project_id != project_id:
            errors[f"deploy.environments[{index}].environment"] = (
                f'environment "{step.environment.name}" belongs to another project'
            )
    if errors:
        raise DRFValidationError(errors)
    serializer = WorkflowDocumentSerializer(
        data=editable_part(workflow_document(workflow)),
        service=workflow.service,
        workflow=workflow,
    )
    serializer.is_valid(raise_exception=True)


def save_deploy_steps(workflow: Workflow, steps: list[dict[str, Any]], actor=None) -> None:
    """Updates deploy steps in place, matched by environment: runs waiting at a step keep
    pointing at it, and a change of its approvers is audited and applies to their next decision."""
    existing = {step.environment_id: step for step in workflow.deploy_steps.all()}
    keep = []
    for order, step in enumerate(steps):
        environment = step["_environment"]
        row = existing.get(environment.pk) or WorkflowEnvironment(
            workflow=workflow, environment=environment
        )
        before = designation(row) if row.pk else None
        row.order = order
        row.mode = step["mode"]
        row.required_approvals = step["required_approvals"]
        row.allow_self_approval = step["allow_self_approval"]
        row.approval_expiry_hours = step["approval_expiry_hours"]
        row.auto_rollback = step["auto_rollback"]
        row.save()
        row.approver_users.set(step["_users"])
        row.approver_groups.set(step["_groups"])
        after = designation(row)
        if before is not None and before != after:
            approvers_changed.send(Workflow, step=row, before=before, after=after, user=actor)
        keep.append(row.pk)
    workflow.deploy_steps.exclude(pk__in=keep).delete()


def designation(step: WorkflowEnvironment) -> dict[str, Any]:
    return {
        "users": sorted(u.username for u in step.approver_users.all()),
        "groups": sorted(g.name for g in step.approver_groups.all()),
        "required": step.required_approvals,
    }
