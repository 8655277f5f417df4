"""The live dashboard: the latest runs of every workflow a user can see, what waits for their
approval, and the runs list with filters and keyset pagination.

The number of queries does not grow with the number of runs: the last runs per workflow come
from one UNION ALL of per-workflow LIMIT queries on the (workflow, number) index, and the runs list pages on (created_at, id) with a cursor, never an
OFFSET, so page 1,000 costs what page 1 does (bench/dashboard.py)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, time, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q, QuerySet, prefetch_related_objects
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from rest_framework.request import Request

from atmosly.pagination import NewestFirst
from executions.models import Execution, Trigger
from executions.status import ExecutionStatus
from workflows.models import Workflow
from workflows.permissions import visible_projects

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

RECENT_PER_WORKFLOW = 10
UNION_TERMS = 400  # SQLite allows 500 terms in one compound SELECT
PAGE_SIZE = 25
# Stand-ins for a term's workflow and status, replaced in its parameters (never real values).
STAND_IN_ID = -1_987_654_321  # within a 32-bit id, which Django checks
STAND_IN_STATUS = "\x00status"
Term = tuple[str, list[Any]]


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
        {
            "workflow": w,
            "last": recent[w.pk][0] if recent[w.pk] else None,
            "recent": recent[w.pk],
            "dots": result_dots(recent[w.pk]),
        }
        for w in workflows
    ]


def result_dots(runs: list[Execution]) -> SafeString:
    """The "last 10 results" links of a workflow's row, oldest first, as HTML. Built here, not
    by the template, because a page of 50 workflows has 500 of them: the template's `{% url %}`
    and `get_status_display` per dot were most of the page's time (bench/dashboard.py)."""
    # Every run page's URL differs only by the id; reverse once per call, not per dot.
    prefix = reverse("execution-page", args=[0]).removesuffix("0/")
    labels = dict(ExecutionStatus.choices)
    dots = []
    for r in reversed(runs):
        label = escape(f"#{r.number} {labels.get(r.status, r.status)}")
        dots.append(
            f'<a href="{prefix}{r.pk}/" class="dot status-{escape(r.status)}" title="{label}">'
            f'<span class="visually-hidden">{label}</span></a>'
        )
    # Safe: the ids are integers and every text is escaped above (stdlib escape: Django's
    # format_html per dot was a third of the page's time).
    return mark_safe("".join(dots))


def last_runs(workflow_ids: list[int]) -> list[Execution]:
    """The last RECENT_PER_WORKFLOW runs of each workflow, newest first, in one query: one
    `ORDER BY number DESC LIMIT 10` per workflow (a UNION ALL on SQLite, a LATERAL join on
    PostgreSQL), each read from the unique
    (workflow, number) index (numbers grow with time), so the cost does not grow with the
    number of runs, as a window over all of them would."""
    if not workflow_ids:
        return []
    table = Execution._meta.db_table
    if connection.vendor == "postgresql":
        # One LATERAL subquery, planned once (a UNION's terms are planned one by one: 34 ms
        # for 50 workflows at 1,000,000 runs, EXPLAIN ANALYZE).
        sql = (
            f"SELECT e.* FROM unnest(%s::bigint[]) AS w(id) CROSS JOIN LATERAL (SELECT * FROM "
            f"{table} WHERE workflow_id = w.id ORDER BY number DESC "
            f"LIMIT {RECENT_PER_WORKFLOW}) AS e"
        )
        runs = list(Execution.objects.raw(sql, [workflow_ids]))
    else:
        # Each term wrapped in a subquery with an alias: SQLite accepts a LIMIT there.
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


def run_terms(user: User | AnonymousUser, data: dict[str, Any], size: int) -> list[Term]:
    """The runs list as one `(sql, params)` query of up to `size` runs per (workflow, status) pair `user` may see that matches
    cleaned RunFilters `data`, each newest first on its own index range; [] if none can match.

    Why not one `workflow_id IN (...) ORDER BY created_at DESC` query: neither SQLite nor
    PostgreSQL (before 18) walks one index in that order for a list of workflows, so they sort
    every visible run (7 s at 1,000,000 runs). One term per workflow reads only its newest rows
    from the (workflow, [filter,] created_at, id) indexes and stops; runs_page merges them."""
    workflows = Workflow.objects.filter(service__project__in=visible_projects(user))
    if data.get("workflow"):
        workflows = workflows.filter(pk=data["workflow"])
    ids = list(workflows.order_by("pk").values_list("pk", flat=True))
    runs = Execution.objects.all()
    if data.get("branch"):
        runs = runs.filter(branch=data["branch"])
    if data.get("trigger"):
        runs = runs.filter(trigger=data["trigger"])
    if data.get("who"):
        # An id rather than a join to auth_user, so each term stays on one index.
        who = User.objects.filter(username=data["who"]).values_list("pk", flat=True).first()
        if who is None:
            return []
        runs = runs.filter(triggered_by_id=who)
    zone = timezone.get_current_timezone()
    if data.get("since"):
        runs = runs.filter(created_at__gte=datetime.combine(data["since"], time.min, zone))
    if data.get("until"):
        end = datetime.combine(data["until"] + timedelta(days=1), time.min, zone)
        runs = runs.filter(created_at__lt=end)
    if data.get("after"):
        # `<=` first: a range bound the index scan starts at; the OR only drops the ties.
        stamp, pk = data["after"]
        runs = runs.filter(Q(created_at__lte=stamp) & (Q(created_at__lt=stamp) | Q(id__lt=pk)))
    order = ("-created_at", "-id")
    if data.get("before"):  # the API's `previous` pages: oldest first from the cursor
        stamp, pk = data["before"]
        runs = runs.filter(Q(created_at__gte=stamp) & (Q(created_at__gt=stamp) | Q(id__gt=pk)))
        order = ("created_at", "id")
    statuses = data.get("status") or [None]
    if not ids:
        return []
    if connection.vendor == "postgresql":
        return [lateral_term(runs, order, ids, statuses, size)]
    # One term compiled once with stand-in values, then repeated with each pair's values:
    # building 50 querysets cost more than running them.
    term = runs.filter(workflow_id=STAND_IN_ID)
    if statuses != [None]:
        term = term.filter(status=STAND_IN_STATUS)
    sql, params = (
        term.order_by(*order).values_list("created_at", "id")[:size].query.sql_with_params()
    )
    return [
        (sql, [w if p == STAND_IN_ID else s if p == STAND_IN_STATUS else p for p in params])
        for w in ids
        for s in statuses
    ]


def lateral_term(
    runs: QuerySet[Execution], order: tuple[str, str], ids: list[int], statuses: list, size: int
) -> Term:
    """PostgreSQL's form of run_terms: one term per (workflow, status) pair through a LATERAL
    join over the pairs. PostgreSQL plans each term of a UNION apart: 30-38 ms of planning for
    50 workflows against 2 ms of execution (EXPLAIN ANALYZE at 1,000,000 runs); the LATERAL
    subquery is planned once and runs per pair on the same index."""
    term = runs.filter(workflow_id=RawSQL('"pairs"."workflow"', ()))
    if statuses != [None]:
        term = term.filter(status=RawSQL('"pairs"."status"', ()))
    sql, params = (
        term.order_by(*order).values_list("created_at", "id")[:size].query.sql_with_params()
    )
    pairs = [(w, s or "") for w in ids for s in statuses]
    way = "ASC" if order[0] == "created_at" else "DESC"
    return (
        "SELECT t.* FROM unnest(%s::bigint[], %s::text[]) AS pairs(workflow, status) "
        f"CROSS JOIN LATERAL ({sql}) AS t ORDER BY 1 {way}, 2 {way} LIMIT {size}",
        [[w for w, _ in pairs], [s for _, s in pairs], *params],
    )


def newest_ids(terms: list[Term], size: int, oldest: bool = False) -> list[int]:
    """The ids of the `size` newest runs over all `terms`, newest first (`oldest`: the oldest,
    oldest first, for terms ordered that way): one UNION ALL query of `LIMIT size` terms per
    UNION_TERMS terms, merged."""
    found: list[tuple[Any, int]] = []
    for start in range(0, len(terms), UNION_TERMS):
        parts, params = [], []
        for i, (sql, term_params) in enumerate(terms[start : start + UNION_TERMS]):
            # Each term in a subquery with an alias: PostgreSQL and SQLite both accept a LIMIT
            # there, and PostgreSQL before 16 needs the alias.
            parts.append(f"SELECT * FROM ({sql}) AS t{i}")
            params.extend(term_params)
        query = (
            f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS runs "
            f"ORDER BY 1 {'ASC' if oldest else 'DESC'}, 2 {'ASC' if oldest else 'DESC'} "
            f"LIMIT {size}"
        )
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            found.extend(cursor.fetchall())
    # The stored values of one column compare in time order on both backends.
    found.sort(reverse=not oldest)
    return [pk for _, pk in found[:size]]


def runs_page(
    user: User | AnonymousUser, data: dict[str, Any], size: int = PAGE_SIZE
) -> tuple[list[Execution], str]:
    """One page of the runs list after the cursor `data["after"]`, and the next page's cursor
    ("" on the last page). Keyset: (created_at, id) < the cursor's, newest first. Three
    queries (four with `who`), whatever the number of runs (bench/dashboard.py)."""
    ids = newest_ids(run_terms(user, data, size + 1), size + 1)
    rows = Execution.objects.select_related("workflow__service", "triggered_by").in_bulk(ids[:size])
    page = [rows[pk] for pk in ids[:size] if pk in rows]
    return page, (encode_cursor(page[-1]) if len(ids) > size and page else "")


class RunsNewestFirst(NewestFirst):
    """The API's runs list: NewestFirst's cursors and answer, with each page read by
    run_terms/newest_ids (one index range per workflow) instead of one scan in time order.
    The view gives the cleaned filters as `view.run_filters()`."""

    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any]:
        self.view = view
        return super().paginate_queryset(queryset, request, view)

    def fetch(
        self, queryset: QuerySet[Any], older: bool, key: tuple[datetime, int] | None, count: int
    ) -> list[Any]:
        data = dict(self.view.run_filters())
        if key is not None:
            data["after" if older else "before"] = key
        ids = newest_ids(run_terms(self.request.user, data, count), count, oldest=not older)
        rows = queryset.in_bulk(ids)
        return [rows[pk] for pk in ids if pk in rows]
