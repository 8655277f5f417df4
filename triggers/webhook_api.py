"""REST API for webhooks: each workflow's hook URLs and secret, and the delivery log.

- GET  /api/workflows/<id>/webhook/                 URLs per provider, how to paste them
- POST /api/workflows/<id>/webhook/rotate-secret/   a new secret, shown in this answer only
- GET  /api/workflows/<id>/webhook-deliveries/      deliveries its hook received or that ran it
- GET  /api/projects/<id>/webhook-deliveries/       every delivery to the project's hooks
- GET  /api/webhook-deliveries/<id>/                one delivery with its headers and payload
- POST /api/webhook-deliveries/<id>/redeliver/      re-run the matching on the stored payload

Listing needs "View workflows", redelivering and rotating "Change workflow"; other projects'
objects are 404.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiTypes, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from atmosly.api_input import BoundedLookupMixin, parse_id
from integrations.models import Outcome, Provider, WebhookDelivery, WebhookEndpoint
from triggers.webhooks import (
    check_redeliver,
    check_rotate_secret,
    deliveries_for_project,
    deliveries_for_workflow,
    get_endpoint,
)
from workflows.api import get_workflow_for
from workflows.models import Workflow
from workflows.permissions import CHANGE, VIEW, WorkflowPermission, visible_projects

MATCHING_HELP = (
    "Exact rules compare the whole branch name. Wildcard rules and tag patterns are globs: "
    "* matches anything but /, so release/* matches release/1.2 but not release/1.2/hotfix; "
    "** as a whole segment also crosses /, so release/** matches both; ? is one character, "
    "[a-z] one of a set. Pull requests start CI workflows that build pull requests."
)

SETUP = {
    Provider.GITHUB: {
        "where": "Repository or organisation → Settings → Webhooks → Add webhook",
        "steps": [
            "Payload URL: the URL above",
            "Content type: application/json",
            "Secret: this workflow's webhook secret",
            "Events: Just the push event; add Pull requests for a CI workflow that builds them",
            "Add webhook: GitHub sends a ping, answered 200",
        ],
    },
    Provider.GITLAB: {
        "where": "Project or group → Settings → Webhooks → Add new webhook",
        "steps": [
            "URL: the URL above",
            "Secret token: this workflow's webhook secret",
            "Trigger: Push events and Tag push events; add Merge request events for a CI "
            "workflow that builds them",
            "Keep SSL verification on, then Add webhook",
        ],
    },
    Provider.BITBUCKET: {
        "where": "Repository settings → Webhooks → Add webhook",
        "steps": [
            "URL: the URL above",
            "Secret: this workflow's webhook secret (without it Bitbucket does not sign, and "
            "deliveries are refused)",
            "Triggers: Repository Push; add Pull Request Created and Updated for a CI workflow "
            "that builds them",
            "Save",
        ],
    },
}


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    workflow = serializers.IntegerField(source="workflow_id")
    number = serializers.IntegerField()
    status = serializers.CharField()


class WebhookDeliverySerializer(serializers.ModelSerializer):
    runs = RunSerializer(source="executions", many=True, read_only=True)
    summary = serializers.SerializerMethodField()
    redelivered_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "received_at",
            "project",
            "workflow",
            "provider",
            "event",
            "kind",
            "delivery_id",
            "ref",
            "branch",
            "tag",
            "commit_sha",
            "before_sha",
            "repository_name",
            "repository_url",
            "sender",
            "outcome",
            "reason",
            "summary",
            "status_code",
            "runs",
            "duplicate_of",
            "redelivery_of",
            "redelivered_by",
        ]
        read_only_fields = fields

    def get_summary(self, delivery: WebhookDelivery) -> str:
        if delivery.outcome == Outcome.TRIGGERED:
            runs = ", ".join(f"#{e.number}" for e in delivery.executions.all())
            return f"triggered run {runs}"
        return f"{delivery.outcome}: {delivery.reason}"


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    payload = serializers.SerializerMethodField()

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "headers", "body_size", "payload"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.ANY)
    def get_payload(self, delivery: WebhookDelivery) -> Any:
        body = bytes(delivery.body)
        try:
            return json.loads(body)
        except ValueError:
            return body[:20000].decode(errors="replace")


def delivery_queryset(qs: QuerySet[WebhookDelivery]) -> QuerySet[WebhookDelivery]:
    return qs.select_related("redelivered_by").prefetch_related("executions")


class WorkflowDeliveryList(generics.ListAPIView):
    """A workflow's delivery log: what its hook received and what started it, newest first."""

    serializer_class = WebhookDeliverySerializer
    permission_classes = [WorkflowPermission]
    required_perm = VIEW

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        workflow = get_workflow_for(self.request.user, self.kwargs["pk"])
        return delivery_queryset(deliveries_for_workflow(workflow))


class ProjectDeliveryList(generics.ListAPIView):
    """Every delivery to the hooks of a project's workflows, newest first."""

    serializer_class = WebhookDeliverySerializer
    permission_classes = [WorkflowPermission]
    required_perm = VIEW

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        if parse_id(self.kwargs["pk"]) is None:
            raise Http404("No such project.")
        project = get_object_or_404(visible_projects(self.request.user), pk=self.kwargs["pk"])
        return delivery_queryset(deliveries_for_project(project))


class DeliveryDetail(BoundedLookupMixin, generics.RetrieveAPIView):
    serializer_class = WebhookDeliveryDetailSerializer
    permission_classes = [WorkflowPermission]
    required_perm = VIEW

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        return delivery_queryset(
            WebhookDelivery.objects.filter(project__in=visible_projects(self.request.user))
        )


class Redeliver(BoundedLookupMixin, generics.GenericAPIView):
    """Re-runs the matching on the stored payload; a commit that already has its run is not
    started again (re-run the execution for that)."""

    serializer_class = WebhookDeliverySerializer
    permission_classes = [WorkflowPermission]
    required_perm = CHANGE

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        return WebhookDelivery.objects.filter(project__in=visible_projects(self.request.user))

    @extend_schema(request=None, responses={201: WebhookDeliverySerializer})
    def post(self, request: Request, pk: int) -> Response:
        delivery = check_redeliver(request.user, self.get_object())
        rows = delivery_queryset(WebhookDelivery.objects.all())
        data = self.get_serializer(rows.get(pk=delivery.pk))
        return Response(data.data, status=status.HTTP_201_CREATED)


def hook_info(workflow: Workflow, endpoint: WebhookEndpoint, secret: str | None = None) -> dict:
    base = settings.SITE_URL.rstrip("/")
    providers = [
        {
            "provider": value,
            "name": label,
            "url": f"{base}/hooks/{value}/{endpoint.hook_id}/",
            **SETUP[Provider(value)],
        }
        for value, label in Provider.choices
    ]
    shown = endpoint.secret_shown_at
    return {
        "workflow": workflow.pk,
        "hook_id": endpoint.hook_id,
        "urls": {p["provider"]: p["url"] for p in providers},
        "providers": providers,
        "secret": secret,
        "secret_shown_at": shown,
        "secret_note": (
            "Copy it now: it is not shown again. Rotate to get a new one."
            if secret
            else "The secret is shown once, when it is made. POST rotate-secret/ to make "
            + ("a new one (the old one stops working)." if shown else "it.")
        ),
        "trigger": workflow.trigger_mode,
        "branch_rules": workflow.branch_rules,
        "tag_patterns": workflow.tag_patterns,
        "pull_requests": workflow.build_pull_requests,
        "concurrency": workflow.run_concurrency,
        "matching_help": MATCHING_HELP,
    }


class WorkflowWebhook(APIView):
    """The URL to paste into each provider, with instructions. Never the secret."""

    permission_classes = [WorkflowPermission]
    required_perm = VIEW

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        workflow = get_workflow_for(request.user, pk)
        return Response(hook_info(workflow, get_endpoint(workflow)))


class RotateSecret(APIView):
    """Makes a new secret and returns it in this answer only; the old one stops working."""

    permission_classes = [WorkflowPermission]
    required_perm = CHANGE

    @extend_schema(request=None, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, pk: int) -> Response:
        workflow = get_workflow_for(request.user, pk)
        secret = check_rotate_secret(request.user, workflow)
        info = hook_info(workflow, get_endpoint(workflow), secret=secret)
        response = Response(info, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response
