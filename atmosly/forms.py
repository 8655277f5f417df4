"""Pages show the API's errors: the same field paths and messages, next to the field."""

from __future__ import annotations

from django import forms
from django.forms.utils import ErrorDict
from rest_framework.exceptions import ValidationError

from atmosly.api_errors import flatten_errors


def add_api_errors(form: forms.Form, exc: Exception) -> list[dict[str, str]]:
    """Puts each `{field, message}` the API would answer on the form field of that path (the
    form's own fields are named like the API's), the rest on the form itself with its path."""
    if isinstance(form, forms.Form) and not form.is_bound and form._errors is None:
        form._errors, form.cleaned_data = ErrorDict(), {}  # errors on a form shown empty
    if isinstance(exc, ValidationError):
        errors = flatten_errors(exc.detail)
    else:
        # An APIException's detail, or a domain error's (PermissionDenied, Conflict) message.
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

    def format_value(self, value):
        return None
