"""Keyset (cursor) pagination for the history lists: API and pages.

An offset makes the database read and throw away every row before the page, so page 18,000 of a
million runs took 46 s. A cursor carries the last row's `(created_at, id)` and the next page is
`WHERE created_at <= c AND (created_at < c OR id < i) ORDER BY created_at DESC, id DESC LIMIT n`:
the first condition starts an index range scan at the cursor (any depth costs the same) and the
second drops the rows tied with it. DRF's CursorPagination orders by one field and skips ties by
an offset, which repeats or loses runs when one starts while someone pages; hence this class.
There is no total count either: counting is the other full scan.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from django.core.exceptions import BadRequest
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

BAD_CURSOR = "not a cursor: use the next or previous link of an earlier page"


def encode_cursor(direction: str, row: Any) -> str:  # a row with `created_at`
    raw = f"{direction}|{row.created_at.isoformat()}|{row.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, datetime, int]:
    """('n' older | 'p' newer, created_at, id); ValidationError naming `cursor` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, created, pk = raw.split("|")
        moment = datetime.fromisoformat(created)
        if direction not in ("n", "p") or moment.tzinfo is None:
            raise ValueError(direction)
        return direction, moment, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError({"cursor": [BAD_CURSOR]}) from None


class NewestFirst(BasePagination):
    """Newest first by `(created_at, id)`. `?cursor=` from an earlier answer's `next` or
    `previous`; `?limit=` 1 to 200 (default 50). Answers
    `{"next": url|null, "previous": url|null, "results": [...]}`."""

    page_size = 50
    max_page_size = 200

    # Narrower than DRF's base (which also takes a list): this keyset cursor needs a
    # QuerySet (it filters and orders by `(created_at, id)`).
    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Any], request: Request, view: object = None
    ) -> list[Any]:
        self.request = request
        self.size = self.page_size
        limit = request.query_params.get("limit", "")
        if limit:
            if not limit.isdigit() or not 1 <= int(limit) <= self.max_page_size:
                raise ValidationError({"limit": [f"a number from 1 to {self.max_page_size}"]})
            self.size = int(limit)
        cursor = request.query_params.get("cursor", "")
        older, key = True, None
        if cursor:
            direction, at, pk = decode_cursor(cursor)
            older, key = direction == "n", (at, pk)
        rows = self.fetch(queryset, older, key, self.size + 1)
        more = len(rows) > self.size
        rows = rows[: self.size]
        if not older:
            rows.reverse()
        # Older rows exist past the last one when going back and there were more, or when
        # coming forward from a later page; newer ones the other way round.
        self.next = encode_cursor("n", rows[-1]) if rows and (more if older else True) else None
        self.previous = (
            encode_cursor("p", rows[0]) if rows and (bool(cursor) if older else more) else None
        )
        return rows

    def fetch(
        self, queryset: QuerySet[Any], older: bool, key: tuple[datetime, int] | None, count: int
    ) -> list[Any]:
        """Up to `count` rows past the cursor's `(created_at, id)` `key` (None: from the
        newest), newest first when `older`, else oldest first."""
        if key is not None:
            at, pk = key
            if older:
                queryset = queryset.filter(
                    Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(pk__lt=pk))
                )
            else:
                queryset = queryset.filter(
                    Q(created_at__gte=at) & (Q(created_at__gt=at) | Q(pk__gt=pk))
                )
        ordering = ("-created_at", "-id") if older else ("created_at", "id")
        return list(queryset.order_by(*ordering)[:count])

    def link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, "cursor", cursor)

    def get_next_link(self) -> str | None:
        return self.link(self.next)

    def get_previous_link(self) -> str | None:
        return self.link(self.previous)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view: object) -> list[dict[str, Any]]:
        return [
            {
                "name": "cursor",
                "required": False,
                "in": "query",
                "description": "From an earlier answer's next or previous link.",
                "schema": {"type": "string"},
            },
            {
                "name": "limit",
                "required": False,
                "in": "query",
                "description": f"Rows per page, 1 to {self.max_page_size} (default 50).",
                "schema": {"type": "integer"},
            },
        ]


def newest_first_page(
    request: HttpRequest, queryset: QuerySet, size: int = 20
) -> tuple[list, str | None, str | None]:
    """One page of `queryset` newest first for a browser page: (rows, older URL, newer URL).
    A cursor that does not decode is a 400 (BadRequest)."""
    paginator = NewestFirst()
    paginator.page_size = size
    drf_request = Request(request)
    try:
        rows = paginator.paginate_queryset(queryset, drf_request)
    except ValidationError:
        raise BadRequest(BAD_CURSOR) from None
    return rows, paginator.get_next_link(), paginator.get_previous_link()


class CappedCountPaginator(Paginator):
    """The admin changelist's paginator: counts at most CAP rows, so a filtered list of a
    million runs costs a bounded scan instead of a full COUNT; beyond CAP the page links stop at
    CAP's last page (narrow the filters to go further)."""

    CAP = 10_000
    object_list: QuerySet[Any]  # the admin's changelist always passes a QuerySet

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.CAP].count()
