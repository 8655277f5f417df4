"""What starts runs from a person or a program: the Run button and `POST
/api/workflows/<id>/run/`, the CLI, a re-run, a rollback. Each door checks the same rules
(`executions.services.check_can_run`) and then calls down into the lifecycle
(`do_create_execution`, `do_rerun`). Webhook deliveries start runs in `triggers.webhooks`,
each due occurrence of a Cron CD job in `triggers.schedules`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from atmosly.errors import Conflict, Invalid, check_valid
from executions.models import Execution, RefKind, Release, Trigger
from executions.releases import current_release
from executions.serializers import RunRequestSerializer
from executions.services import (
    carried_from,
    check_can_run,
    do_create_execution,
    do_rerun,
)
from executions.status import ExecutionStatus
from workflows.models import Workflow
from workflows.permissions import CHANGE, is_member

if TYPE_CHECKING:
    from django.contrib.auth.models import User


S = ExecutionStatus


class RollbackRefused(Conflict):
    """The release cannot be rolled back to (HTTP 409)."""

    default_message = "This release cannot be rolled back to."


def check_run_request(
    user: User | None, workflow: Workflow, data: dict[str, Any], trigger: str = Trigger.MANUAL
) -> Execution:
    """The Run button and `POST /api/workflows/<id>/run/`: validates the body
    (`RunRequestSerializer`: `branch`, `tag`, `ref`, `commit`, `image_tag`; 400 with field
    paths: Invalid), then `check_run_workflow`.

    A commit runs that exact commit and records the branch named with it (none if none was); an
    image tag applies only to deploy-only workflows and replaces the tag of the workflow's
    image."""
    body = RunRequestSerializer(data=data)
    check_valid(body)
    ref_kind, ref = body.target()
    commit = body.validated_data.get("commit", "")
    tag = body.validated_data.get("image_tag", "")
    if workflow.builds_image and tag:
        raise Invalid(
            {
                "image_tag": [
                    "only deploy-only (pre-built image) workflows take "
                    "an image tag; this one builds its image"
                ]
            }
        )
    if not workflow.builds_image and commit:
        raise Invalid({"commit": ["a deploy-only workflow deploys an image, not a commit"]})
    image = ""
    if tag:
        repository = image_repository(workflow.source_image or workflow.service.image)
        if not repository:
            raise Invalid({"image_tag": ["this workflow has no image to tag"]})
        image = f"{repository}:{tag}"
    if commit:
        # A commit is built as itself; a branch named with it is recorded, never guessed.
        named = ref if ref_kind in (RefKind.BRANCH, RefKind.BRANCH_OR_TAG) else ""
        return check_run_workflow(
            user,
            workflow,
            ref=commit,
            ref_kind=RefKind.COMMIT,
            branch=named,
            trigger=trigger,
            image=image,
        )
    return check_run_workflow(
        user, workflow, ref=ref, ref_kind=ref_kind, trigger=trigger, image=image
    )


def image_repository(reference: str) -> str:
    """`registry:5000/team/app:1.2@sha256:…` → `registry:5000/team/app`."""
    reference = reference.strip().split("@", 1)[0]
    head, _, last = reference.rpartition("/")
    name = last.split(":", 1)[0]
    return f"{head}/{name}" if head else name


def check_run_workflow(
    user: User | None,
    workflow: Workflow,
    *,
    ref: str = "",
    ref_kind: str = "",
    branch: str | None = None,
    trigger: str = Trigger.MANUAL,
    trigger_detail: str = "",
    image: str = "",
    enqueue: bool = True,
) -> Execution:
    """Checks the user may run the workflow and that its definition is still valid
    (`check_can_run`), then creates the run (and hands it to the workers unless the caller runs
    it itself).

    `ref_kind` is the field the user filled in (RefKind); without a ref, the run builds the
    service's default branch."""
    check_can_run(user, workflow)
    if not ref:
        ref, ref_kind = workflow.service.default_branch, RefKind.BRANCH
    return do_create_execution(
        workflow,
        ref=ref,
        ref_kind=ref_kind or RefKind.BRANCH_OR_TAG,
        branch=branch,
        trigger=trigger,
        triggered_by=user,
        trigger_detail=trigger_detail,
        image=image,
        enqueue=enqueue,
    )


def check_rerun(user: User | None, execution: Execution, from_failed: bool = False) -> Execution:
    """Runs the same commit again. `from_failed` keeps the stages that succeeded before the
    failure (their outputs, the checkout and the built image) and starts at the failed one.
    PermissionDenied / Invalid from `check_can_run`; Conflict (409) while the run has
    not ended."""
    check_can_run(user, execution.workflow, "Re-running")
    if not execution.is_terminal:
        raise Conflict(f"{execution} has not ended yet")
    return do_rerun(execution, by=user, from_failed=from_failed)


def check_rollback(user: User | None, release: Release) -> Execution:
    """Checks the user may roll back and that the release's environment can still be deployed
    to, then starts the rollback run."""
    if user is not None:
        if not user.has_perm(CHANGE):
            raise PermissionDenied('Rolling back needs the "Change workflow" permission.')
        if not is_member(user, release.service.project):
            raise PermissionDenied("You are not a member of this project.")
    environment, workflow = release.environment, release.workflow
    if not environment.is_active:
        raise RollbackRefused(f'Environment "{environment.name}" is inactive.')
    if not workflow.deploy_steps.filter(environment=environment).exists():
        raise RollbackRefused(
            f'Workflow "{workflow.name}" no longer deploys to "{environment.name}".'
        )
    current = current_release(workflow, environment)
    if current is not None and current.pk == release.pk:
        raise RollbackRefused(f"{environment.name} runs release #{release.pk} already.")
    check_can_run(user, workflow, "Rolling back")
    return do_rollback(user, release)


def do_rollback(user: User | None, release: Release) -> Execution:
    """A new run of trigger "rollback" with only the deploy stage of the release's environment,
    redeploying its image digest (no build), through the same gates as any deploy."""
    source = release.execution
    with transaction.atomic():
        execution = do_create_execution(
            release.workflow,
            ref=source.ref or release.commit_sha,
            **carried_from(source),
            trigger=Trigger.ROLLBACK,
            triggered_by=user,
            trigger_detail=f"rollback of {release.environment.name} to release #{release.pk}",
            image=release.image,
            commit_sha=release.commit_sha,
            image_digest=release.image_digest,
            only_environment=release.environment,
            stage_output={"rollback_of": release.pk},
        )
    return execution
