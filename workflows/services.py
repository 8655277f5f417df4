"""Changes to projects, services and workflows. Views call these; each is one transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError

from workflows.document import WorkflowDocumentSerializer, workflow_document
from workflows.models import (
    CIVariable,
    PipelineType,
    Service,
    SourceKind,
    Workflow,
    WorkflowEnvironment,
)
from workflows.permissions import ADD_APPROVER

DEFAULT_WORKFLOW_NAME = "default"


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
READ_ONLY_KEYS = frozenset({"id", "service", "project", "is_default", "created_at", "updated_at"})


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
) -> Workflow:
    """Validates a workflow document (and the right to change approvers), then saves it."""
    doc = check_workflow_document(user, service, data, workflow, partial)
    return do_save_workflow(service, doc, workflow, actor=user)


@transaction.atomic
def do_save_workflow(
    service: Service, doc: dict[str, Any], workflow: Workflow | None = None, actor=None
) -> Workflow:
    """Writes a validated document: the workflow row, its deploy steps and its variables."""
    workflow = workflow or Workflow(service=service)
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
    from approvals.services import record_approvers_changed

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
            record_approvers_changed(row, before, after, actor)
        keep.append(row.pk)
    workflow.deploy_steps.exclude(pk__in=keep).delete()


def designation(step: WorkflowEnvironment) -> dict[str, Any]:
    return {
        "users": sorted(u.username for u in step.approver_users.all()),
        "groups": sorted(g.name for g in step.approver_groups.all()),
        "required": step.required_approvals,
    }
