from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from atmosly.admin_base import LogAdmin
from integrations.models import TriggeredCommit, WebhookDelivery, WebhookEndpoint
from workflows.permissions import VIEW


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(LogAdmin):
    project_paths = ("project",)
    spec_perms = {"view": VIEW}
    list_display = [
        "received_at",
        "provider",
        "event",
        "workflow",
        "ref_name",
        "short_sha",
        "outcome",
        "reason",
        "status_code",
    ]
    list_filter = ["outcome", "provider", "kind", ("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = [
        "delivery_id",
        "commit_sha",
        "branch",
        "tag",
        "repository_name",
        "sender",
        "reason",
    ]
    date_hierarchy = "received_at"
    list_select_related = ["workflow__service__project"]
    exclude = ["body"]
    readonly_fields = ["runs", "pretty_headers", "payload"]

    @admin.display(description="branch / tag")
    def ref_name(self, obj: WebhookDelivery) -> str:
        return obj.tag or obj.branch

    @admin.display(description="commit")
    def short_sha(self, obj: WebhookDelivery) -> str:
        return obj.short_sha

    @admin.display(description="started runs")
    def runs(self, obj: WebhookDelivery) -> str:
        return ", ".join(
            str(e) for e in obj.executions.select_related("workflow__service__project")
        )

    @admin.display(description="headers")
    def pretty_headers(self, obj: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2))

    @admin.display(description="payload")
    def payload(self, obj: WebhookDelivery) -> str:
        body = bytes(obj.body)
        try:
            shown = json.dumps(json.loads(body), indent=2)[:50000]
        except ValueError:
            shown = body[:50000].decode(errors="replace")
        return format_html("<pre>{}</pre>", shown)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(LogAdmin):
    project_paths = ("workflow__service__project",)
    spec_perms = {"view": VIEW}
    list_display = ["workflow", "hook_id", "created_at", "secret_shown_at"]
    search_fields = ["hook_id", "workflow__name", "workflow__service__name"]
    list_select_related = ["workflow__service__project"]


@admin.register(TriggeredCommit)
class TriggeredCommitAdmin(LogAdmin):
    project_paths = ("workflow__service__project",)
    spec_perms = {"view": VIEW}
    list_display = ["workflow", "ref", "commit_sha", "execution", "delivery", "created_at"]
    search_fields = ["commit_sha", "ref"]
    list_select_related = ["workflow__service__project", "execution"]
