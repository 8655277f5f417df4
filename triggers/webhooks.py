"""Webhook deliveries: verify, store, deduplicate and decide; start runs; redeliver; secrets.

`check_delivery` is all a hook view calls. It does database work only (no git, engine or
network), so a provider gets its answer in milliseconds; each run it creates is handed to the
queue after commit by `executions.services.do_create_execution`.

Exactly once: the delivery row claims its delivery id and each run first claims its
(workflow, ref, commit) in a `TriggeredCommit`, both under unique constraints and in the same
transaction as the run, so a copy of a push arriving later or at the same moment fails to insert
and starts nothing (see integrations/models.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping

from atmosly.errors import Invalid, NotFound
from executions.models import Execution, RefKind, Trigger
from executions.services import (
    IllegalTransition,
    check_can_run,
    do_create_execution,
    do_terminate,
)
from executions.status import WAITING, ExecutionStatus
from integrations.models import (
    Outcome,
    TriggeredCommit,
    WebhookDelivery,
    WebhookEndpoint,
)
from integrations.webhooks.events import Kind, RefChange, WebhookError, WebhookEvent, text
from integrations.webhooks.matching import explain_mismatch, repository_key, same_repository
from integrations.webhooks.providers import WebhookProvider, webhook_providers
from workflows.models import (
    Project,
    RunConcurrency,
    SourceKind,
    TriggerMode,
    Workflow,
    new_webhook_secret,
)
from workflows.permissions import CHANGE, is_member
from workflows.validators import MAX_REF_BYTES

MAX_BODY_BYTES = 5 * 1024 * 1024
# The delivery log's reason names branches whole; this only bounds a pathological payload.
MAX_REASON = 20_000
# How far back the delivery log is searched for the pushes that came before or after one.
PUSH_HISTORY = 500
COMMON_HEADERS = ("Content-Type", "Content-Length", "User-Agent")
BUILDABLE = frozenset({Kind.PUSH, Kind.TAG, Kind.PULL_REQUEST})
# The kind of a run's ref is the kind of the event that named it.
REF_KINDS = {
    Kind.PUSH: RefKind.BRANCH,
    Kind.TAG: RefKind.TAG,
    Kind.PULL_REQUEST: RefKind.PULL_REQUEST,
}
# A newer push cancels the older run in any of these; Terminating is already on its way out.
CANCELLABLE = frozenset({ExecutionStatus.PENDING, ExecutionStatus.RUNNING, *WAITING})


@dataclass
class Reply:
    """What the hook view answers: an HTTP status and a small JSON body."""

    status: int
    body: dict[str, Any]


def check_delivery(
    provider_name: str,
    hook_id: str,
    headers: Mapping[str, str],
    body: bytes | None,
    size: int,
) -> Reply:
    """Finds the hook, checks size and signature against the raw body, parses, then stores and
    decides. `body` is None when it was over the limit (and so was not read)."""
    provider = webhook_providers.find(provider_name)
    endpoint = None
    if provider is not None and 0 < len(hook_id) <= 64:
        # Three columns, not the workflow, service and project rows: the workflows that build
        # the repository are read once, in candidate_workflows. Compiling a select of all their
        # columns cost about 2 ms a delivery (py-spy, bench/README.md).
        endpoint = (
            WebhookEndpoint.objects.filter(hook_id=hook_id)
            .values_list("workflow_id", "workflow__service__project_id", "workflow__webhook_secret")
            .first()
        )
    if provider is None or endpoint is None:  # no endpoint is looked up without a provider
        return Reply(404, {"detail": "no such webhook"})
    workflow_id, project_id, webhook_secret = endpoint
    row = WebhookDelivery(
        project_id=project_id,
        workflow_id=workflow_id,
        provider=provider.NAME,
        delivery_id=text(provider.delivery_id(headers), 100),
        event=text(headers.get(provider.EVENT_HEADER, ""), 100),
        headers=kept_headers(provider, headers),
        body_size=size,
    )
    if body is None:
        return _reject(row, 413, f"the body ({size} bytes) is over the 5 MB limit")
    try:
        provider.verify(headers, body, webhook_secret)
    except WebhookError as exc:
        return _reject(row, exc.status, exc.message)
    row.body = body  # authenticated from here on, so worth keeping for redeliver
    try:
        event = provider.parse(headers, body)
    except WebhookError as exc:
        return _reject(row, exc.status, exc.message)
    started = do_receive(row, event)
    return Reply(row.status_code, reply_body(row, started))


def kept_headers(provider: WebhookProvider, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping: never the signature or the token."""
    names = (*COMMON_HEADERS, *provider.KEPT_HEADERS)
    return {name: text(headers[name], 200) for name in names if headers.get(name)}


def _reject(row: WebhookDelivery, status: int, reason: str) -> Reply:
    row.outcome, row.reason, row.status_code = Outcome.REJECTED, text(reason, MAX_REASON), status
    row.save()
    return Reply(status, {"detail": reason, "delivery": row.pk, "outcome": row.outcome})


def reply_body(row: WebhookDelivery, started: list[Execution]) -> dict[str, Any]:
    return {
        "delivery": row.pk,
        "outcome": row.outcome,
        "reason": row.reason,
        "runs": [{"id": e.pk, "workflow": e.workflow_id, "number": e.number} for e in started],
    }


def do_receive(row: WebhookDelivery, event: WebhookEvent) -> list[Execution]:
    """Stores an authenticated delivery and starts what it matches, in one transaction;
    returns the runs it started."""
    _describe(row, event)
    if event.kind == Kind.PING:
        row.outcome, row.reason, row.status_code = Outcome.IGNORED, "ping: the hook works", 200
        row.save()
        return []
    row.status_code = 202
    row.outcome = Outcome.IGNORED
    row.first_copy = bool(row.delivery_id) and row.redelivery_of_id is None
    saved = False
    try:
        with transaction.atomic():
            # The first statement, so a duplicate delivery id fails before anything is done.
            row.save()
            saved = True
            return _decide(row, event)
    except IntegrityError:
        if saved:
            raise
    _record_duplicate(row)
    return []


def _describe(row: WebhookDelivery, event: WebhookEvent) -> None:
    row.event, row.kind = event.event, event.kind.value
    row.ref, row.branch, row.tag = event.ref, event.branch, event.tag
    row.commit_sha, row.before_sha = event.commit, event.before
    row.repository_name = event.repository_name
    row.repository_url = (event.repository_urls[0] if event.repository_urls else "")[:500]
    row.sender = event.sender


def _record_duplicate(row: WebhookDelivery) -> None:
    first = WebhookDelivery.objects.filter(
        workflow=row.workflow_id,
        provider=row.provider,
        delivery_id=row.delivery_id,
        first_copy=True,
    ).first()
    row.pk, row._state.adding, row.first_copy, row.duplicate_of = None, True, False, first
    row.reason = (
        f"duplicate: delivery {row.delivery_id} was received before"
        + (f" (#{first.pk})" if first else "")
        + "; nothing started again"
    )
    row.save()


def _decide(row: WebhookDelivery, event: WebhookEvent) -> list[Execution]:
    changes = [c for c in event.changes if c.kind in BUILDABLE]
    started: list[Execution] = []
    # Notes are said whatever happens; misses only explain why nothing started.
    notes: list[str] = [f"{c.name} was deleted" for c in event.changes if c.kind == Kind.DELETE]
    misses: list[str] = []
    if not changes:
        if not notes:
            misses.append(event.reason or "nothing to build")
    else:
        candidates, left_out = candidate_workflows(row, event)
        for change in changes:
            for workflow in candidates:
                why = explain_mismatch(workflow, change)
                if why:
                    misses.append(why)
                    continue
                execution, why = do_trigger(workflow, change, event, row)
                if execution is not None:
                    started.append(execution)
                else:
                    notes.append(why)
        misses += left_out
    if started:
        # One INSERT: the runs are new, so `add()`'s look for existing links is not needed.
        WebhookDelivery.executions.through.objects.bulk_create(
            WebhookDelivery.executions.through(webhookdelivery=row, execution=e) for e in started
        )
        row.outcome = Outcome.TRIGGERED
        said = ["started " + ", ".join(f"{e.workflow} #{e.number}" for e in started), *notes]
    else:
        said = [*notes, *misses]
    row.reason = "; ".join(dict.fromkeys(said))[:MAX_REASON]
    row.save(update_fields=["outcome", "reason"])
    return started


def candidate_workflows(row: WebhookDelivery, event: WebhookEvent) -> tuple[list[Workflow], list]:
    """The project's automatic git workflows that build the pushed repository, and why the
    others are left out."""
    keys = {repository_key(u) for u in event.repository_urls} - {""}
    if not keys:
        return [], ["the payload names no repository"]
    # Narrow in the database by the repository's name, then compare whole host/paths here.
    names = Q()
    for key in keys:
        names |= Q(service__repo_url__icontains=key.rsplit("/", 1)[-1])
    same = [
        w
        for w in Workflow.objects.filter(names, service__project=row.project_id)
        .filter(source_kind=SourceKind.GIT)
        .select_related("service__project")
        if same_repository(w.service.repo_url, event.repository_urls)
    ]
    if not same:
        name = event.repository_name or sorted(keys)[0]
        return [], [f"no workflow of project {row.project} builds {name}"]
    manual = [
        f"{w} is started by hand only" for w in same if w.trigger_mode != TriggerMode.AUTOMATIC
    ]
    return [w for w in same if w.trigger_mode == TriggerMode.AUTOMATIC], manual


def do_trigger(
    workflow: Workflow, change: RefChange, event: WebhookEvent, delivery: WebhookDelivery
) -> tuple[Execution | None, str]:
    """Claims (workflow, ref, commit) and creates the run; with "cancel in progress" the older
    runs on the branch are terminated first. Returns the run, or None and why not."""
    # The same check as every other door (no user: the signature is the authority). CI
    # workflows too: a registry link edited outside the API would push with another
    # project's credentials.
    try:
        check_can_run(None, workflow)
    except Invalid as exc:
        problems = "; ".join(e["message"] for e in exc.errors[:2])
        return None, f"{workflow} cannot run: {problems}"
    if len(change.name.encode()) > MAX_REF_BYTES:
        return None, f"{workflow} cannot build a ref name longer than {MAX_REF_BYTES} bytes"
    cancel = workflow.run_concurrency == RunConcurrency.CANCEL_IN_PROGRESS
    if cancel and change.kind == Kind.PUSH:
        newer = newer_push(delivery, change)
        if newer is not None:
            # Building it would only be cancelled, or deploy older code over newer code.
            return None, (
                f"{workflow} did not start {change.commit[:12]}: a newer push to "
                f"{change.branch} ({newer.commit_sha[:12]}, delivery #{newer.pk}) was received "
                "before this late one, and the workflow cancels older runs"
            )
    # No savepoint of its own: an error here fails the whole delivery's transaction.
    with transaction.atomic(savepoint=False):
        try:
            with transaction.atomic():
                claim = TriggeredCommit.objects.create(
                    workflow=workflow, ref=change.ref, commit_sha=change.commit, delivery=delivery
                )
        except IntegrityError:
            return None, _already_started(workflow, change)
        if cancel:
            cancel_older_runs(workflow, change, delivery)
        full_sha = len(change.commit) >= 40
        kind = REF_KINDS[change.kind]
        execution = do_create_execution(
            workflow,
            # Source checks out this commit; Bitbucket's pull requests carry only a 12-digit
            # hash, which git cannot fetch, so those check out the branch instead.
            ref=change.tag or change.branch,
            ref_kind=kind,
            trigger=Trigger.WEBHOOK,
            trigger_detail=_trigger_detail(event, change),
            branch=change.branch,
            tag=change.tag,
            commit_sha=change.commit if full_sha else "",
            # Who pushed: stops them approving their own deploy (approvals.services).
            actor_login=event.sender,
            actor_email=event.sender_email,
            # Whoever redelivered started this run: they may not approve it either.
            triggered_by=delivery.redelivered_by,
        )
        claim.execution = execution
        claim.save(update_fields=["execution"])
    return execution, ""


def newer_push(delivery: WebhookDelivery, change: RefChange) -> WebhookDelivery | None:
    """A push to the same branch received before this delivery but made after it, or None.

    Pushes are ordered by their own `before` → `after` links, the order the provider recorded
    them in (force pushes included), never by arrival or commit dates (clocks and rebases lie).
    A push whose `before` is this push's commit came later; so did any push after that one.
    When a delivery between them was lost the chain breaks and nothing is proven newer."""
    rows = list(
        WebhookDelivery.objects.filter(project=delivery.project_id, ref=change.ref)
        .exclude(pk=delivery.pk)
        .exclude(commit_sha="")
        .exclude(outcome=Outcome.REJECTED)
        .order_by("-received_at", "-id")
        .only("pk", "commit_sha", "before_sha", "received_at")[:PUSH_HISTORY]
    )
    by_after: dict[str, WebhookDelivery] = {}
    by_before: dict[str, list[WebhookDelivery]] = {}
    for row in rows:
        by_after.setdefault(row.commit_sha, row)
        by_before.setdefault(row.before_sha, []).append(row)
    # The pushes that led up to this one are older, even if a later push reused a commit.
    older, sha = set(), change.before
    while sha in by_after and by_after[sha].pk not in older:
        older.add(by_after[sha].pk)
        sha = by_after[sha].before_sha
    newest, seen, frontier = None, set(), [change.commit]
    while frontier:
        sha = frontier.pop()
        for row in by_before.get(sha, []):
            if row.pk in older or row.pk in seen or row.commit_sha == change.commit:
                continue
            seen.add(row.pk)
            newest = row if newest is None or row.received_at > newest.received_at else newest
            frontier.append(row.commit_sha)
    return newest


def _already_started(workflow: Workflow, change: RefChange) -> str:
    first = (
        TriggeredCommit.objects.filter(workflow=workflow, ref=change.ref, commit_sha=change.commit)
        .select_related("execution")
        .first()
    )
    run = f" as run #{first.execution.number}" if first and first.execution else ""
    return f"{workflow} already started {change.commit[:12]} on {change.ref}{run}"


def cancel_older_runs(workflow: Workflow, change: RefChange, delivery: WebhookDelivery) -> None:
    """Terminates the workflow's active runs on the same branch, tag or pull request; only
    called once the delivery is known not to be older than them (`newer_push`)."""
    same = Q(tag=change.tag) if change.tag else Q(branch=change.branch, tag="")
    older = Execution.objects.filter(same, workflow=workflow, status__in=CANCELLABLE)
    what = "pull request" if change.kind == Kind.PULL_REQUEST else "push to"
    for execution in older:
        # IllegalTransition: it finished or was terminated meanwhile, nothing left to cancel.
        with contextlib.suppress(IllegalTransition):
            do_terminate(
                execution,
                by=f"a newer {what} {change.name} ({change.commit[:12]}, "
                f"webhook delivery #{delivery.pk})",
            )


def _trigger_detail(event: WebhookEvent, change: RefChange) -> str:
    who = f" by {event.sender}" if event.sender else ""
    if change.kind == Kind.PULL_REQUEST:
        what = f"pull request #{change.pull_request} {change.branch} → {change.target_branch}"
    elif change.kind == Kind.TAG:
        what = f"tag {change.tag}"
    else:
        what = f"push to {change.branch}"
    return f"{event.provider} {what}{who}"


def check_redeliver(user: User | AnonymousUser, delivery: WebhookDelivery) -> WebhookDelivery:
    """Re-runs the matching on a stored delivery's payload, as a new delivery in the log.
    PermissionDenied without "Change workflow"; NotFound outside the user's projects; Invalid
    (`delivery`) for a delivery that cannot be redelivered."""
    if not user.has_perm(CHANGE):
        raise PermissionDenied('Redelivering needs the "Change workflow" permission.')
    if delivery.project is None or not is_member(user, delivery.project):
        raise NotFound()
    if delivery.outcome == Outcome.REJECTED:
        raise Invalid(
            {"delivery": "a rejected delivery was never authenticated, so it cannot be redelivered"}
        )
    if delivery.workflow is None:
        raise Invalid({"delivery": "the workflow whose hook received it was deleted"})
    assert isinstance(user, User)  # has_perm above refuses an AnonymousUser
    return do_redeliver(delivery, by=user)


def do_redeliver(original: WebhookDelivery, by: User | None = None) -> WebhookDelivery:
    provider = webhook_providers.get(original.provider)
    body = bytes(original.body)
    try:
        event = provider.parse(CaseInsensitiveMapping(original.headers), body)
    except WebhookError as exc:
        raise Invalid({"delivery": exc.message}) from exc
    row = WebhookDelivery(
        project=original.project,
        workflow=original.workflow,
        provider=original.provider,
        delivery_id=original.delivery_id,
        headers=original.headers,
        body=body,
        body_size=len(body),
        redelivery_of=original,
        redelivered_by=by,
    )
    do_receive(row, event)
    return row


def get_endpoint(workflow: Workflow) -> WebhookEndpoint:
    """The workflow's hook, made on first use (two requests at once get the same one)."""
    endpoint = WebhookEndpoint.objects.filter(workflow=workflow).first()
    if endpoint is not None:
        return endpoint
    try:
        with transaction.atomic():
            return WebhookEndpoint.objects.create(workflow=workflow)
    except IntegrityError:
        return WebhookEndpoint.objects.get(workflow=workflow)


def check_rotate_secret(user: User | AnonymousUser, workflow: Workflow) -> str:
    """Needs "Change workflow" (PermissionDenied) in the workflow's project (NotFound outside
    the user's projects); then `do_rotate_secret`."""
    if not user.has_perm(CHANGE):
        raise PermissionDenied(
            'Changing the webhook secret needs the "Change workflow" permission.'
        )
    if not is_member(user, workflow.service.project):
        raise NotFound()
    return do_rotate_secret(workflow)


@transaction.atomic
def do_rotate_secret(workflow: Workflow) -> str:
    """A new secret for the workflow's hook, returned this once and never shown again: the old
    one stops working at once, so paste the new one into the provider straight away."""
    secret = new_webhook_secret()
    workflow.webhook_secret = secret
    workflow.save(update_fields=["webhook_secret"])
    endpoint = get_endpoint(workflow)
    endpoint.secret_shown_at = timezone.now()
    endpoint.save(update_fields=["secret_shown_at"])
    return secret


def deliveries_for_workflow(workflow: Workflow) -> QuerySet[WebhookDelivery]:
    """Deliveries its hook received, and those from other hooks that started it."""
    started = WebhookDelivery.executions.through.objects.filter(execution__workflow=workflow)
    return WebhookDelivery.objects.filter(
        Q(workflow=workflow) | Q(pk__in=started.values("webhookdelivery_id"))
    )


def deliveries_for_project(project: Project) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(project=project)
