"""Pages show the API's errors: the same field paths and messages, next to the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from django import forms
from django.forms.utils import ErrorDict
from rest_framework.exceptions import ValidationError

from atmosly.errors import Invalid, flatten_errors


class ErrorTarget(Protocol):
    """A form, or what puts errors on one under other names (setup_views.ItemErrors)."""

    @property
    def fields(self) -> Mapping[str, Any]: ...

    def add_error(self, field: str | None, error: str) -> None: ...


def add_api_errors(form: ErrorTarget, exc: Exception) -> list[dict[str, str]]:
    """Puts each `{field, message}` the API would answer for `exc` (a domain error of
    atmosly.errors, Django's PermissionDenied, or a serializer's ValidationError) on the form
    field of that path (the form's own fields are named like the API's), the rest on the form
    itself with its path."""
    # Errors on a form shown empty: Django has no public way, and its stubs omit `_errors`.
    if isinstance(form, forms.Form) and not form.is_bound and form._errors is None:  # type: ignore[attr-defined]
        form._errors, form.cleaned_data = ErrorDict(), {}  # type: ignore[attr-defined]
    if isinstance(exc, Invalid):
        errors = exc.errors
    elif isinstance(exc, ValidationError):  # a serializer's, raised in the API layer
        errors = flatten_errors(exc.detail)
    else:
        # A domain error's message (Conflict, NotFound, Django's PermissionDenied), or an
        # APIException's detail.
        errors = [{"field": "", "message": str(getattr(exc, "detail", exc))}]
    for error in errors:
        field, message = error["field"], error["message"]
        if field in form.fields:
            form.add_error(field, message)
        else:
            form.add_error(None, f"{field}: {message}" if field else message)
    return errors


class WriteOnlyTextarea(forms.Textarea):
    """A multi-line secret (an SSH key, a kubeconfig): typed in, never rendered back, not even
    when the form is shown again with errors. (A password input would drop its newlines.)"""

    def format_value(self, value: Any) -> None:
        return None
