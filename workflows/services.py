"""Changes to projects, services and workflows. Views call these; each is one transaction."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import connection, models, transaction
from django.db.models import F, ProtectedError

from atmosly.errors import Conflict, Invalid, check_valid
from executions.models import Execution
from executions.status import UNFINISHED
from workflows.document import (
    READ_ONLY_KEYS,
    DeployEnvironmentSerializer,
    WorkflowDocumentSerializer,
    workflow_document,
)
from workflows.models import (
    CIVariable,
    Environment,
    PipelineType,
    Project,
    RegistryConnection,
    Service,
    SourceKind,
    Workflow,
    WorkflowEnvironment,
)
from workflows.permissions import (
    ADD_APPROVER,
    CHANGE,
    CHANGE_PROJECT,
    DELETE,
    administers,
    is_member,
    perm_label,
)
from workflows.serializers import ProjectSerializer
from workflows.signals import approvers_changed

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, Group, User
    from django.db.backends.utils import CursorWrapper
    from rest_framework.request import Request
    from rest_framework.serializers import ModelSerializer

DEFAULT_WORKFLOW_NAME = "default"
ADD_PROJECT = "workflows.add_project"


def check_create_project(user: User, data: dict[str, Any]) -> Project:
    """Validates `name` and `description` as `POST /api/projects/` does (needs "Can add
    project"), then creates the project with `user` as its first member."""
    if not user.has_perm(ADD_PROJECT):
        raise PermissionDenied('Creating a project needs the "Can add project" permission.')
    serializer = ProjectSerializer(data=data)
    check_valid(serializer)
    return do_create_project(serializer.validated_data, creator=user)


@transaction.atomic
def do_create_project(data: dict[str, Any], creator: User | None = None) -> Project:
    project = Project.objects.create(**data)
    if creator is not None:
        project.members.add(creator)
    return project


def grantable_roles(actor: User) -> list[Group]:
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


def check_add_member(actor: User, project: Project, username: str, role: str = "") -> Any:
    """Adds the active user `username` to `project`, with the role (group) named `role` if
    given. Only who administers the project may (`administers`); 400 names the field
    (`username`, `role`)."""
    if not administers(actor, project):
        raise PermissionDenied("Only an administrator of this project can change its members.")
    users = get_user_model().objects.filter(username=(username or "").strip(), is_active=True)
    user = users.first()
    if user is None:
        raise Invalid({"username": [f'no active user named "{username}"']})
    group = None
    if role:
        group = next((g for g in grantable_roles(actor) if g.name == role), None)
        if group is None:
            raise Invalid(
                {"role": [f'"{role}" is not a role you may give (it needs permissions you lack)']}
            )
    do_add_member(project, user, group)
    return user


@transaction.atomic
def do_add_member(project: Project, user: User, group: Group | None = None) -> None:
    project.members.add(user)
    if group is not None:
        user.groups.add(group)


def check_remove_member(actor: User, project: Project, username: str) -> None:
    """Removes `username` from the project's members (their roles stay: they are global).
    An administrator cannot remove themself, so a project always keeps one."""
    if not administers(actor, project):
        raise PermissionDenied("Only an administrator of this project can change its members.")
    user = project.members.filter(username=username).first()
    if user is None:
        raise Invalid({"username": [f'"{username}" is not a member']})
    if user.pk == actor.pk:
        raise Invalid({"username": ["you cannot remove yourself"]})
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


class VersionConflict(Conflict):
    """The workflow was saved by someone else since the version the client edited. The API
    answers 412 with `body` (`workflows.api`: the version, who saved it and when)."""

    status_code = 412

    def __init__(self, workflow: Workflow):
        who = workflow.updated_by.username if workflow.updated_by else "someone"
        when = workflow.updated_at.isoformat(timespec="seconds") if workflow.updated_at else ""
        self.body: dict[str, Any] = {
            "detail": f"{who} saved this workflow (version {workflow.version}) at {when} "
            "since you opened it. Reload to see their change, or overwrite it.",
            "version": workflow.version,
            "updated_by": workflow.updated_by.username if workflow.updated_by else None,
            "updated_at": when,
        }
        super().__init__(self.body["detail"])


def editable_part(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in READ_ONLY_KEYS}


def approvers_of(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Who approves at each deploy step that has approvers, from the document's
    `deploy.environments`: {environment: (users, groups, required approvals)}."""
    return {
        step["environment"]: (
            sorted(step.get("approvers", {}).get("users", [])),
            sorted(step.get("approvers", {}).get("groups", [])),
            step.get("required_approvals", 0),
        )
        for step in steps
        if step.get("required_approvals")
        or step.get("approvers", {}).get("users")
        or step.get("approvers", {}).get("groups")
    }


def check_workflow_document(
    user: User,
    service: Service,
    data: dict[str, Any],
    workflow: Workflow | None = None,
    partial: bool = False,
) -> dict[str, Any]:
    """Validates a workflow document for `service` and the user's right to change its
    approvers; returns the validated document for `do_save_workflow`. The API and the admin
    both call this, so both refuse the same documents with the same field paths and messages.

    Raises Invalid (the API's 400, keyed by field path) or PermissionDenied (403)."""
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["the workflow document must be a mapping"]})
    current = workflow_document(workflow) if workflow else {}
    if partial and workflow:
        data = {**current, **data}
    data = editable_part(data)
    serializer = WorkflowDocumentSerializer(data=data, service=service, workflow=workflow)
    check_valid(serializer)
    # Both sides in the document's terms: the validated steps hold rows, rendered back to names.
    proposed: list[dict[str, Any]] = DeployEnvironmentSerializer(many=True).to_representation(  # type: ignore[assignment]  # many=True renders a list
        serializer.validated_data["deploy_steps"]
    )
    stored: list[dict[str, Any]] = current.get("deploy", {}).get("environments", [])
    if approvers_of(proposed) != approvers_of(stored) and not user.has_perm(ADD_APPROVER):
        raise PermissionDenied(
            'Changing the approvers of a workflow needs the "Add approver to workflows" permission.'
        )
    return serializer.validated_data


def check_save_workflow(
    user: User,
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
    actor: User | None = None,
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
    # The validated document is the workflow's columns (WorkflowDocumentSerializer's `source=`),
    # plus its two lists of rows.
    columns = dict(doc)
    steps, variables = columns.pop("deploy_steps"), columns.pop("variables")
    for column, value in columns.items():
        setattr(workflow, column, value)
    if not service.workflows.exists():
        workflow.is_default = True
    workflow.save()
    save_deploy_steps(workflow, steps, actor)
    save_variables(workflow, variables)
    return workflow


def save_variables(workflow: Workflow, variables: list[dict[str, Any]]) -> None:
    """Replaces the workflow's variables. Secret values left out of the document keep what is
    stored (they are never sent back); a secret-manager variable stores no value."""
    stored = {v.key: v for v in workflow.variables.all()}
    workflow.variables.exclude(key__in=[v["key"] for v in variables]).delete()
    for var in variables:
        row = stored.get(var["key"]) or CIVariable(workflow=workflow, key=var["key"])
        row.is_secret = var["is_secret"]
        row.scope = var["scope"]
        row.secret_manager = var["secret_manager"]
        row.secret_ref = var["secret_ref"]
        if var["is_secret"]:
            row.value = ""
            if var["secret_manager"]:
                row.secret_value = ""
            elif var.get("value"):
                row.secret_value = var["value"]
        else:
            row.value = var.get("value") or ""
            row.secret_value = ""
        row.save()


# Workflow id -> (digest of the rows its last passing run check read, when: time.monotonic()).
# Per process; a digest that differs, or none, means the full check runs again.
_PASSED_RUN_CHECKS: dict[int, tuple[bytes, float]] = {}
_PASSED_RUN_CHECKS_MAX = 10_000
# A pass is trusted this long at most (seconds): a few rules depend on more than the rows, such
# as the clock (a cron schedule must fire within five years) and the time zone database.
RUN_CHECK_PASS_SECONDS = 300.0


def _rows_digest(cursor: CursorWrapper, queries: list[tuple[str, list[Any]]]) -> bytes:
    digest = hashlib.blake2b(digest_size=20)
    for sql, params in queries:
        cursor.execute(sql, params)
        digest.update(repr(cursor.fetchall()).encode())
        digest.update(b"\x00")
    return digest.digest()


def run_check_inputs(workflow_id: int) -> bytes:
    """A digest of every row and column `validate_for_run` reads for `workflow_id`: the
    workflow, its service and project, the service's other workflows' names, the project's
    environments and registries (and any other row its links point at), its deploy steps with
    their approver users and groups, the project's members and the workflow's variables.

    Read with plain SQL (0.27 ms of CPU for a CI workflow against 14.3 ms for the full check,
    SQLite), straight from the tables, so a change made through the API, the admin or directly
    in the database changes it. Returns b"" when the workflow no longer exists."""
    wf, svc, prj = Workflow._meta, Service._meta, Project._meta
    env, reg = Environment._meta, RegistryConnection._meta
    step, var = WorkflowEnvironment._meta, CIVariable._meta
    step_users = WorkflowEnvironment.approver_users.through._meta
    step_groups = WorkflowEnvironment.approver_groups.through._meta
    members = Project.members.through._meta
    user, group = get_user_model()._meta, Group._meta
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT w.service_id, s.project_id FROM {wf.db_table} w "
            f"JOIN {svc.db_table} s ON s.id = w.service_id WHERE w.id = %s",
            [workflow_id],
        )
        found = cursor.fetchone()
        if found is None:
            return b""
        service_id, project_id = found
        steps = f"SELECT id FROM {step.db_table} WHERE workflow_id = %s"
        return _rows_digest(
            cursor,
            [
                (f"SELECT * FROM {wf.db_table} WHERE id = %s", [workflow_id]),
                (f"SELECT * FROM {svc.db_table} WHERE id = %s", [service_id]),
                (f"SELECT * FROM {prj.db_table} WHERE id = %s", [project_id]),
                (
                    f"SELECT id, name FROM {wf.db_table} WHERE service_id = %s ORDER BY id",
                    [service_id],
                ),
                (
                    f"SELECT * FROM {env.db_table} WHERE project_id = %s OR id IN "
                    f"(SELECT environment_id FROM {step.db_table} WHERE workflow_id = %s) "
                    f"OR id = (SELECT builder_environment_id FROM {wf.db_table} WHERE id = %s) "
                    "ORDER BY id",
                    [project_id, workflow_id, workflow_id],
                ),
                (
                    f"SELECT * FROM {reg.db_table} WHERE project_id = %s OR id IN "
                    f"(SELECT registry_id FROM {wf.db_table} WHERE id = %s) "
                    f"OR id = (SELECT image_registry_id FROM {svc.db_table} WHERE id = %s) "
                    "ORDER BY id",
                    [project_id, workflow_id, service_id],
                ),
                (
                    f"SELECT * FROM {step.db_table} WHERE workflow_id = %s ORDER BY id",
                    [workflow_id],
                ),
                (
                    f"SELECT l.id, l.workflowenvironment_id, u.id, u.username, u.is_active, "
                    f"u.is_superuser FROM {step_users.db_table} l JOIN {user.db_table} u "
                    f"ON u.id = l.user_id WHERE l.workflowenvironment_id IN ({steps}) "
                    "ORDER BY l.id",
                    [workflow_id],
                ),
                (
                    f"SELECT l.id, l.workflowenvironment_id, g.id, g.name "
                    f"FROM {step_groups.db_table} l JOIN {group.db_table} g "
                    f"ON g.id = l.group_id WHERE l.workflowenvironment_id IN ({steps}) "
                    "ORDER BY l.id",
                    [workflow_id],
                ),
                (
                    f"SELECT user_id FROM {members.db_table} WHERE project_id = %s "
                    "ORDER BY user_id",
                    [project_id],
                ),
                (f"SELECT * FROM {var.db_table} WHERE workflow_id = %s ORDER BY id", [workflow_id]),
            ],
        )


def validate_for_run(workflow: Workflow) -> None:
    """Re-checks the stored definition before a run: environments may have been deactivated,
    users removed, or rows edited outside the API since it was saved.

    The document names its registry and environments, so it resolves them again by name in the
    project; the stored links must be those same rows. A link to another project's registry or
    environment (written straight to the database) would hand that project's credentials to
    this run. Raises Invalid keyed by field path (the API's 400).

    The full check costs about 15 ms of CPU, half of a webhook delivery's; it is skipped when
    every row it reads is as it was at this process's last passing check of the workflow
    (`run_check_inputs`), for RUN_CHECK_PASS_SECONDS at most. A failing check is never
    remembered, nor a pass that may not be of the rows the digest read: the caller's workflow,
    service or project differing from the stored rows (loaded before an edit), or the rows
    changing while the check ran."""
    inputs = run_check_inputs(workflow.pk)
    passed = _PASSED_RUN_CHECKS.get(workflow.pk)
    if (
        inputs
        and passed is not None
        and passed[0] == inputs
        and time.monotonic() - passed[1] < RUN_CHECK_PASS_SECONDS
    ):
        return
    _full_run_check(workflow)
    if not inputs:
        return
    stored = Workflow.objects.select_related("service__project").filter(pk=workflow.pk).first()
    if (
        stored is None
        or not _same_row(stored, workflow)
        or not _same_row(stored.service, workflow.service)
        or not _same_row(stored.service.project, workflow.service.project)
        or run_check_inputs(workflow.pk) != inputs
    ):
        return
    if len(_PASSED_RUN_CHECKS) >= _PASSED_RUN_CHECKS_MAX:
        _PASSED_RUN_CHECKS.clear()
    _PASSED_RUN_CHECKS[workflow.pk] = (inputs, time.monotonic())


def _same_row(a: models.Model, b: models.Model) -> bool:
    return all(f.value_from_object(a) == f.value_from_object(b) for f in a._meta.concrete_fields)


def _full_run_check(workflow: Workflow) -> None:
    project_id = workflow.service.project_id
    errors: dict[str, str] = {}
    if workflow.registry is not None and workflow.registry.project_id != project_id:
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
        raise Invalid(errors)
    # The editable sections only: what a save would check (the read-only keys, such as the
    # schedule's next runs, cost time and are dropped by the check anyway).
    document = WorkflowDocumentSerializer(workflow).to_representation(workflow)
    serializer = WorkflowDocumentSerializer(
        data=document,
        service=workflow.service,
        workflow=workflow,
    )
    check_valid(serializer)


def save_deploy_steps(
    workflow: Workflow, steps: list[dict[str, Any]], actor: User | None = None
) -> None:
    """Updates deploy steps in place, matched by environment: runs waiting at a step keep
    pointing at it, and a change of its approvers is audited and applies to their next decision."""
    existing = {step.environment_id: step for step in workflow.deploy_steps.all()}
    keep = []
    for order, step in enumerate(steps):
        fields = dict(step)
        environment = fields.pop("environment")
        users, groups = fields.pop("approver_users"), fields.pop("approver_groups")
        row = existing.get(environment.pk) or WorkflowEnvironment(
            workflow=workflow, environment=environment
        )
        before = designation(row) if row.pk else None
        row.order = order
        for column, value in fields.items():
            setattr(row, column, value)
        row.save()
        row.approver_users.set(users)
        row.approver_groups.set(groups)
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


# Edits and deletes of what a project's workflows use: services, registry connections and
# environments. The API's viewsets and the set-up pages both call these, so both doors refuse
# the same users (403) and the same deletes (409, `ProtectedError` naming what is in the way).


def require_project_perm(user: User | AnonymousUser, project: Project, perm: str) -> None:
    """The API's rule for objects of a project: a member (or superuser) holding the spec
    permission `perm`, else PermissionDenied with the API's message (403)."""
    if not (user.has_perm(perm) and is_member(user, project)):
        raise PermissionDenied(f'This needs the "{perm_label(perm)}" permission.')


def unfinished_runs(**filters: Any) -> list[Execution]:
    """Runs not yet ended (pending, running, terminating, waiting for a deploy or approval)
    matching `filters`, oldest first."""
    runs = Execution.objects.filter(status__in=UNFINISHED, **filters)
    return list(runs.select_related("workflow__service__project").order_by("pk"))


def do_update_object(
    user: User | AnonymousUser,
    instance: Service | RegistryConnection | Environment,
    serializer_class: type[ModelSerializer[Any]],
    data: dict[str, Any],
    request: Request | None = None,
) -> Any:
    """`PATCH /api/<services|registries|environments>/<id>/` for the same data: needs "Change
    workflow" in the object's project; Invalid (the API's 400) names the field. Write-only
    secrets left out of `data` keep their stored value."""
    require_project_perm(user, instance.project, CHANGE)
    serializer = serializer_class(instance, data=data, partial=True, context={"request": request})
    check_valid(serializer)
    with transaction.atomic():
        return serializer.save()


def do_delete_service(user: User | AnonymousUser, service: Service) -> None:
    """Deletes a service with its workflows, their runs, logs, reports and releases (the
    rule of `DELETE /api/services/<id>/`: "Delete workflow" in its project).

    Refused with ProtectedError (the API's 409, naming them) while any of its runs has not
    ended: a run mid-deploy would lose its record and leave its deploy lock and containers
    behind. Terminate them or let them end first."""
    require_project_perm(user, service.project, DELETE)
    with transaction.atomic():
        Service.objects.select_for_update().filter(pk=service.pk).first()
        running = unfinished_runs(workflow__service=service)
        if running:
            raise ProtectedError(
                f"Cannot delete service {service}: {len(running)} run(s) have not ended.",
                set(running),
            )
        service.delete()


def do_delete_registry(user: User | AnonymousUser, registry: RegistryConnection) -> None:
    """Deletes a registry connection (the rule of `DELETE /api/registries/<id>/`: "Change
    workflow" in its project). Refused with ProtectedError (409) while a workflow pushes to it
    or a service pulls its pre-built image through it (the PROTECT foreign keys)."""
    require_project_perm(user, registry.project, CHANGE)
    with transaction.atomic():
        registry.delete()


def do_delete_environment(user: User | AnonymousUser, environment: Environment) -> None:
    """Deletes an environment with its release history (the rule of `DELETE
    /api/environments/<id>/`: "Change workflow" in its project). Refused with ProtectedError
    (409) while a workflow deploys to it or builds in it (the PROTECT foreign keys)."""
    require_project_perm(user, environment.project, CHANGE)
    with transaction.atomic():
        environment.delete()


def do_update_project(
    user: User | AnonymousUser, project: Project, data: dict[str, Any]
) -> Project:
    """`PATCH /api/projects/<id>/` for the same data (`name`, `description`): needs "Can change
    project" as a member (`administers`); 400 names the field."""
    require_project_perm(user, project, CHANGE_PROJECT)
    serializer = ProjectSerializer(project, data=data, partial=True)
    check_valid(serializer)
    with transaction.atomic():
        return serializer.save()


def do_delete_project(user: User | AnonymousUser, project: Project) -> None:
    """Deletes a project with everything in it (the rule of `DELETE /api/projects/<id>/`: "Can
    delete project" as a member). Refused with ProtectedError (409) while a run in it has not
    ended, or while its rows still protect each other (Django's PROTECT foreign keys)."""
    require_project_perm(user, project, "workflows.delete_project")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        running = unfinished_runs(workflow__service__project=project)
        if running:
            raise ProtectedError(
                f"Cannot delete project {project}: {len(running)} run(s) have not ended.",
                set(running),
            )
        project.delete()
