"""One error shape for the whole API: 400s name the field path and say what is wrong.

`{"errors": [{"field": "deploy.environments[2].environment", "message": "..."}], "detail": "..."}`
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def flatten_errors(detail: Any, path: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error detail into a flat list of {field, message}."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                out += flatten_errors(value, path)
            elif isinstance(key, int):  # DRF keys a list's item errors by index
                out += flatten_errors(value, f"{path}[{key}]")
            else:
                out += flatten_errors(value, f"{path}.{key}" if path else str(key))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out += [{"field": path, "message": str(item)} for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:  # DRF puts {} for list items that are valid
                    out += flatten_errors(item, f"{path}[{index}]")
    else:
        out.append({"field": path, "message": str(detail)})
    return out


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


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, ValidationError):
        errors = flatten_errors(exc.detail)
        marks = getattr(context.get("request"), "yaml_marks", None)
        if marks:
            errors = [with_place(error, marks) for error in errors]
        return error_response(errors, status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
