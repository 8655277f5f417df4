"""One error shape for the whole API: 400s name the field path and say what is wrong.

`{"errors": [{"field": "deploy.environments[2].environment", "message": "..."}], "detail": "..."}`

A delete that other rows still need answers 409 and names them:
`{"detail": "...", "blocked_by": [{"type": "workflow", "id": 3, "name": "demo/web: deliver"}]}`;
a move the status machine refuses answers 409; a body over the endpoint's cap answers 413.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, ProtectedError, RestrictedError
from rest_framework import status
from rest_framework.exceptions import NotFound as DRFNotFound
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

# flatten_errors: imported from here by the API layer since before the domain errors had it.
from atmosly.errors import Conflict, Invalid, NotFound, flatten_errors

__all__ = ["error_response", "exception_handler", "flatten_errors", "with_place"]


def with_place(error: dict[str, Any], marks: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Adds the YAML line and column of the error's field, or of its nearest written parent
    (a missing field is reported where its section is)."""
    path = error["field"]
    while path not in marks and path:
        path = path[: max(path.rfind("."), path.rfind("["), 0)]
    if path not in marks:
        return error
    line, column = marks[path]
    return {**error, "line": line, "column": column}


def error_response(errors: list[dict[str, str]], code: int = 400) -> Response:
    detail = "; ".join(
        (f"{e['field']}: {e['message']}" if e["field"] else e["message"])
        + (f" (line {e['line']}, column {e['column']})" if "line" in e else "")
        for e in errors
    )
    return Response({"detail": detail, "errors": errors}, status=code)


# Enough to act on; the count says how many more there are.
MAX_BLOCKERS_LISTED = 20


def blocked_delete_response(exc: ProtectedError | RestrictedError) -> Response:
    """409 naming the rows that still point at what was to be deleted (Django's PROTECT and
    RESTRICT foreign keys); nothing was deleted."""
    blockers: list[Model] = sorted(
        exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects,
        key=lambda obj: (obj._meta.label, obj.pk),
    )
    listed = [
        {"type": obj._meta.model_name, "id": obj.pk, "name": str(obj)}
        for obj in blockers[:MAX_BLOCKERS_LISTED]
    ]
    kinds = sorted({str(obj._meta.verbose_name_plural) for obj in blockers})
    return Response(
        {
            "detail": f"Cannot delete: {len(blockers)} other object(s) still use it "
            f"({', '.join(kinds)}). Delete or change those first.",
            "blocked_by": listed,
            "blocked_by_count": len(blockers),
        },
        status=status.HTTP_409_CONFLICT,
    )


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER, the one place domain errors (atmosly.errors) become answers:
    Invalid and Django's and DRF's validation errors → the 400 shape above; Conflict (a refused
    status move, a decided request, a refused rollback) → 409; NotFound → 404 and Django's
    PermissionDenied → 403, both `{"detail": <message>}` as DRF answers them; blocked deletes →
    409 naming the blockers; a body over the cap → 413."""
    if isinstance(exc, (ProtectedError, RestrictedError)):
        return blocked_delete_response(exc)
    if isinstance(exc, Conflict):
        return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, NotFound):
        exc = DRFNotFound(exc.message)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": str(exc)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, (ValidationError, Invalid)):
        errors = exc.errors if isinstance(exc, Invalid) else flatten_errors(exc.detail)
        marks = getattr(context.get("request"), "yaml_marks", None)
        if marks:
            errors = [with_place(error, marks) for error in errors]
        return error_response(errors, status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
