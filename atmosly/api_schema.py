"""OpenAPI schema additions: the error answers every operation really gives.

drf-spectacular documents the success answer of each operation; the errors come from
`atmosly.api_errors`, `atmosly.api_input` and DRF itself, the same for every view, so one
postprocessing hook documents them by rule instead of a decorator on each view.
"""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "description": "`detail` says what is wrong; `errors` lists each bad field by its path.",
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["detail"],
}
CONFLICT = {
    "type": "object",
    "description": "The object is still used by others (listed in `blocked_by`, at most 20 of "
    "`blocked_by_count`), or the run's status does not allow this move.",
    "properties": {
        "detail": {"type": "string"},
        "blocked_by": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                },
                "required": ["type", "id", "name"],
            },
        },
        "blocked_by_count": {"type": "integer"},
    },
    "required": ["detail"],
}

ANSWERS = {
    "400": ("Error", "Bad input: a field, parameter or document that is not valid."),
    "401": ("Error", "Not authenticated."),
    "403": ("Error", "Not authenticated, or missing the permission this needs."),
    "404": ("Error", "No such object, or it belongs to a project you are not a member of."),
    "409": ("Conflict", "Refused: the object is in use, or the run's status does not allow it."),
    "413": ("Error", "The request body is larger than this endpoint takes."),
    "415": ("Error", "The request body's media type is not one this endpoint reads."),
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def error_codes(method: str, operation: dict[str, Any]) -> list[str]:
    """Which error answers an operation can give, from its method and what it takes."""
    params = operation.get("parameters", [])
    has_path = any(p.get("in") == "path" for p in params)
    has_query = any(p.get("in") == "query" for p in params)
    has_body = "requestBody" in operation
    codes = []
    if has_body or has_query or method != "get":
        codes.append("400")
    if any(requirement for requirement in operation.get("security", [{}])) and {} not in (
        operation.get("security") or []
    ):
        codes += ["401", "403"]
    # A missing object named in the path or a required query parameter, or a `format` this
    # operation cannot render (DRF answers 404 for that).
    if has_path or any(
        p.get("in") == "query" and (p.get("required") or p.get("name") == "format") for p in params
    ):
        codes.append("404")
    if method == "delete" or (method == "post" and has_path):
        codes.append("409")
    if has_body:
        codes += ["413", "415"]
    return codes


def document_error_responses(
    result: dict[str, Any], generator: object, request: object, public: bool
) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry: adds the error answers to each operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("Conflict", CONFLICT)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code in error_codes(method, operation):
                if code in responses:
                    continue
                component, description = ANSWERS[code]
                responses[code] = {
                    "description": description,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{component}"}
                        }
                    },
                }
    return result
