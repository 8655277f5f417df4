"""Fill an admin change form as a browser would: every field with what the page shows, then
one edit. Edits name the workflow document's paths; on a page that edits model fields and
inlines instead, they go to the matching field, so the same test drives either form."""

from __future__ import annotations

from typing import Any

import yaml
from django.test import Client

# Document path → (inline prefix or "", field) on a form that edits the model's fields.
MODEL_FIELDS = {
    "stage_timeout_minutes": "stage_timeout_minutes",
    "pipeline_type": "pipeline_type",
    "build.dockerfile": "dockerfile",
    "push.registry": "registry",
    "deploy.port": "service_port",
    "deploy.cron_schedule": "cron_schedule",
}


def form_data(client: Client, url: str) -> dict[str, Any]:
    page = client.get(url)
    assert page.status_code == 200, url
    forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, Any] = {}
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            if value is True:
                value = "on"
            data[field.html_name] = [str(v) for v in value] if isinstance(value, list) else value
    return data


def edit(data: dict[str, Any], path: str, value: Any, model_value: Any = None) -> None:
    """Sets `path` of the document (or its model field; `model_value` when a model form needs
    another value than the document, e.g. a primary key for a name)."""
    if "document" in data:
        doc = yaml.safe_load(data["document"])
        node = doc
        keys = _keys(path)
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
        data["document"] = yaml.safe_dump(doc, sort_keys=False)
        return
    value = value if model_value is None else model_value
    if path.startswith("deploy.environments["):
        index, field = path.removeprefix("deploy.environments[").split("].", 1)
        name = field.replace("approvers.users", "approver_users")
        data[f"deploy_steps-{index}-{name}"] = value
    else:
        data[MODEL_FIELDS[path]] = "" if value is None else value


def _keys(path: str) -> list[Any]:
    keys: list[Any] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        keys.append(name)
        if rest:
            keys.append(int(rest.rstrip("]")))
    return keys
