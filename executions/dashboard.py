"""The live dashboard: the latest runs of every workflow a user can see, what waits for their
approval, and the runs list with filters and keyset pagination.

The number of queries does not grow with the number of runs: the last runs per workflow come
from one UNION ALL of per-workflow LIMIT queries on the (workflow, number) index, and the runs list pages on (created_at, id) with a cursor, never an
OFFSET, so page 1,000 costs what page 1 does (bench/dashboard.py)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.db.models import Q, QuerySet, prefetch_related_objects
from django.utils import timezone

from executions.models import Execution, Trigger
from executions.status import ExecutionStatus
from workflows.models import Workflow
from workflows.permissions import visible_projects

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

RECENT_PER_WORKFLOW = 10
UNION_TERMS = 400  # SQLite allows 500 terms in one compound SELECT
PAGE_SIZE = 25


def workflow_rows(user: User | AnonymousUser) -> list[dict[str, Any]]:
    """One row per workflow `user` can see, in project/service/workflow order: `workflow`,
    `last` (its latest run or None) and `recent` (its last 10 runs, newest first). Three
    queries (per 400 workflows), whatever the number of runs."""
    workflows = list(
        Workflow.objects.filter(service__project__in=visible_projects(user))
        .select_related("service__project")
        .order_by("service__project__name", "service__name", "name")
    )
    recent: dict[int, list[Execution]] = {w.pk: [] for w in workflows}
    ids = list(recent)
    for start in range(0, len(ids), UNION_TERMS):
        for execution in last_runs(ids[start : start + UNION_TERMS]):
            recent[execution.workflow_id].append(execution)
    return [
        {"workflow": w, "last": recent[w.pk][0] if recent[w.pk] else None, "recent": recent[w.pk]}
        for w in workflows
    ]


def last_runs(workflow_ids: list[int]) -> list[Execution]:
    """The last RECENT_PER_WORKFLOW runs of each workflow, newest first, in one query: a
    UNION ALL of one `ORDER BY number DESC LIMIT 10` per workflow, each read from the unique
    (workflow, number) index (numbers grow with time), so the cost does not grow with the
    number of runs, as a window over all of them would."""
    if not workflow_ids:
        return []
    table = Execution._meta.db_table
    # Each term wrapped in a subquery with an alias: PostgreSQL and SQLite both accept a
    # LIMIT there, and PostgreSQL before 16 needs the alias.
    sql = " UNION ALL ".join(
        f"SELECT * FROM (SELECT * FROM {table} WHERE workflow_id = %s "
        f"ORDER BY number DESC LIMIT {RECENT_PER_WORKFLOW}) AS w{i}"
        for i in range(len(workflow_ids))
    )
    runs = list(Execution.objects.raw(sql, workflow_ids))
    prefetch_related_objects(runs, "triggered_by")
    runs.sort(key=lambda e: (e.workflow_id, -e.number))
    return runs


def encode_cursor(execution: Execution) -> str:
    raw = f"{execution.created_at.isoformat()}|{execution.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, int]:
    """(created_at, id) of the last run of the previous page; ValueError if malformed."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, pk = raw.rsplit("|", 1)
        return datetime.fromisoformat(stamp), int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("not a cursor from this page") from exc


class RunFilters(forms.Form):
    """The runs list's filters, as query parameters (so a URL keeps them)."""

    status = forms.MultipleChoiceField(choices=ExecutionStatus.choices, required=False)
    workflow = forms.IntegerField(required=False, min_value=1)
    branch = forms.CharField(required=False, max_length=255)
    trigger = forms.ChoiceField(choices=[("", "any"), *Trigger.choices], required=False)
    who = forms.CharField(required=False, max_length=150, help_text="username")
    since = forms.DateField(required=False, help_text="from this day (inclusive)")
    until = forms.DateField(required=False, help_text="to this day (inclusive)")
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_after(self) -> tuple[datetime, int] | None:
        value = self.cleaned_data.get("after") or ""
        if not value:
            return None
        try:
            return decode_cursor(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "must be on or after the start day")
        return data


def filtered_runs(user: User | AnonymousUser, data: dict[str, Any]) -> QuerySet[Execution]:
    """Runs of `user`'s projects matching cleaned RunFilters data, newest first."""
    # A list of workflow ids rather than a join to projects: the database can then walk the
    # (created_at, id) order and stop after a page instead of sorting every visible run.
    workflows = Workflow.objects.filter(service__project__in=visible_projects(user))
    runs = Execution.objects.filter(workflow_id__in=list(workflows.values_list("pk", flat=True)))
    if data.get("status"):
        runs = runs.filter(status__in=data["status"])
    if data.get("workflow"):
        runs = runs.filter(workflow_id=data["workflow"])
    if data.get("branch"):
        runs = runs.filter(branch=data["branch"])
    if data.get("trigger"):
        runs = runs.filter(trigger=data["trigger"])
    if data.get("who"):
        runs = runs.filter(triggered_by__username=data["who"])
    zone = timezone.get_current_timezone()
    if data.get("since"):
        runs = runs.filter(created_at__gte=datetime.combine(data["since"], time.min, zone))
    if data.get("until"):
        end = datetime.combine(data["until"] + timedelta(days=1), time.min, zone)
        runs = runs.filter(created_at__lt=end)
    return runs.order_by("-created_at", "-id")


def runs_page(
    user: User | AnonymousUser, data: dict[str, Any], size: int = PAGE_SIZE
) -> tuple[list[Execution], str]:
    """One page of the runs list after the cursor `data["after"]`, and the next page's cursor
    ("" on the last page). Keyset: (created_at, id) < the cursor's, newest first."""
    runs = filtered_runs(user, data)
    if data.get("after"):
        stamp, pk = data["after"]
        runs = runs.filter(Q(created_at__lt=stamp) | Q(created_at=stamp, id__lt=pk))
    page = list(runs.select_related("workflow__service", "triggered_by")[: size + 1])
    more = len(page) > size
    page = page[:size]
    return page, (encode_cursor(page[-1]) if more and page else "")
