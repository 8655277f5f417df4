"""What the API accepts before any view logic runs: bounded ids, bounded bodies, bounded shapes.

Bad input must get a 400 (or 404/413) with a reason, never a 500. Three kinds of input used to
reach the database or the interpreter unchecked:

- ids: a number above the database's integer range raises OverflowError (SQLite) or
  DataError (PostgreSQL). Every id taken from a body, a path or a query goes through `parse_id`.
- body size: each API view takes at most `max_body_bytes` (default `API_MAX_BODY_BYTES`); a larger
  body is answered 413 by `BodyLimitMiddleware` before anything reads it.
- body shape: JSON and YAML deeper than `MAX_DEPTH` levels or with more than `MAX_NODES` values
  are refused by the parsers, so nothing recursive downstream (validation, rendering) can blow
  the stack, and YAML aliases cannot multiply a small document into a huge one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

import yaml
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, JsonResponse
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ParseError, ValidationError
from rest_framework.metadata import SimpleMetadata
from rest_framework.renderers import BaseRenderer

# Primary keys are BigAutoField: SQLite's INTEGER and PostgreSQL's bigint both stop here.
MAX_ID = 2**63 - 1
# A workflow document is about 6 levels deep; 64 leaves room and stays far from the stack limit.
MAX_DEPTH = 64
MAX_NODES = 100_000


def parse_id(value: Any) -> int | None:
    """The id as an int when it is a whole number from 1 to MAX_ID (an int or its decimal
    string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 19:
            return None
        value = int(value)
    if isinstance(value, int) and 1 <= value <= MAX_ID:
        return value
    return None


def query_id(request: Request, name: str) -> int | None:
    """An id filter from the query string: None when absent, 400 naming the parameter when it
    is not an id."""
    raw = request.query_params.get(name, "")
    if raw == "":
        return None
    value = parse_id(raw)
    if value is None:
        raise ValidationError({name: f"give an id (a whole number from 1 to {MAX_ID})"})
    return value


if TYPE_CHECKING:  # the mixin sees the view it is mixed into
    from django.http.response import HttpResponseBase
    from rest_framework.generics import GenericAPIView
    from rest_framework.request import Request
    from rest_framework.views import APIView

    _ViewBase = GenericAPIView[Any]
else:
    _ViewBase = object


class BoundedLookupMixin(_ViewBase):
    """Answers 404 for a path id that cannot be a row (not a number, or out of range) instead of
    passing it to the database."""

    def get_object(self) -> Any:
        lookup = self.lookup_url_kwarg or self.lookup_field
        if lookup in self.kwargs and parse_id(self.kwargs[lookup]) is None:
            raise NotFound("No such object.")
        return super().get_object()


class BoundedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key field that checks the id's type and range before querying."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, (int, float, str)):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, float):
            if not data.is_integer():
                self.fail("incorrect_type", data_type="float")
            data = int(data)
        if parse_id(data) is None:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


class BoundedModelSerializer(serializers.ModelSerializer[Any]):
    serializer_related_field = BoundedPrimaryKeyRelatedField


def check_shape(data: Any, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> Any:
    """Walks parsed data without recursion and refuses it when too deep or too large. Shared
    YAML aliases count each time they are reached, so a "billion laughs" stops at max_nodes."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise ParseError(f"The document has more than {max_nodes} values.")
        if isinstance(value, dict):
            children = list(value.values()) + list(value.keys())
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth >= max_depth and children:
            raise ParseError(f"The document is nested more than {max_depth} levels deep.")
        stack.extend((child, depth + 1) for child in children)
    return data


def _read_body(stream: IO[bytes], parser_context: Mapping[str, Any] | None) -> bytes:
    """The body, refusing it past the view's cap even when no Content-Length announced it."""
    limit = body_limit((parser_context or {}).get("view"))
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge(limit)
    return data


class BodyTooLarge(ParseError):
    status_code = 413
    default_code = "request_too_large"

    def __init__(self, limit: int):
        super().__init__(f"The request body is larger than this endpoint takes ({limit} bytes).")


class YAMLRenderer(BaseRenderer):
    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        # Through JSON first: error details and dates become plain strings YAML can write.
        plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
        return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True).encode()


def body_limit(view: Any) -> int:
    """The most bytes `view` takes in a request body: its `max_body_bytes`, else the default."""
    return getattr(view, "max_body_bytes", None) or settings.API_MAX_BODY_BYTES


class BodyLimitMiddleware:
    """Answers 413 with a JSON error to a request whose declared body is larger than its API
    view takes, before any parser or middleware reads it. Non-API views keep Django's own
    limits (DATA_UPLOAD_MAX_MEMORY_SIZE); the webhook receiver keeps its 5 MB cap."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> JsonResponse | None:
        # Imported here: DRF's views read the parser setting, which names this module.
        from rest_framework.views import APIView

        view_class = getattr(view_func, "cls", None)
        if not (isinstance(view_class, type) and issubclass(view_class, APIView)):
            return None
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number."}, status=400)
        limit = body_limit(view_class)
        if declared > limit:
            return JsonResponse(
                {
                    "detail": f"The request body is {declared} bytes; this endpoint takes at "
                    f"most {limit} bytes."
                },
                status=413,
            )
        return None


class Metadata(SimpleMetadata):
    """DRF's OPTIONS answer, also for views whose body is not described by one serializer (the
    workflow document): those list no field details instead of failing."""

    def determine_actions(self, request: Request, view: APIView) -> dict[str, Any]:
        # Imported here: DRF's generic views read the metadata setting, which names this module.
        from rest_framework.generics import GenericAPIView

        # DRF asks only views that have get_serializer: GenericAPIView's kind.
        view_type: Any = type(view)
        described = getattr(view, "serializer_class", None) is not None or (
            view_type.get_serializer_class is not GenericAPIView.get_serializer_class
        )
        return super().determine_actions(request, view) if described else {}
