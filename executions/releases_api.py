"""REST API for releases: history per service and environment, what runs where, rollback."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from atmosly.api_input import BoundedLookupMixin, query_id
from atmosly.pagination import NewestFirst
from executions.dora import PERIOD_DAYS, dora_for_service
from executions.models import Release
from executions.releases import what_runs_where
from executions.serializers import ExecutionSerializer
from triggers.runs import check_rollback
from workflows.models import Service
from workflows.permissions import CHANGE, VIEW, WorkflowPermission, visible_projects


class ReleaseSerializer(serializers.ModelSerializer):
    environment_name = serializers.CharField(source="environment.name", read_only=True)
    service_name = serializers.CharField(source="service.name", read_only=True)
    workflow_name = serializers.CharField(source="workflow.name", read_only=True)
    execution_number = serializers.IntegerField(source="execution.number", read_only=True)
    deployed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = [
            "id",
            "environment",
            "environment_name",
            "service",
            "service_name",
            "workflow",
            "workflow_name",
            "execution",
            "execution_number",
            "image",
            "image_digest",
            "commit_sha",
            "version",
            "deployed_by",
            "created_at",
            "is_rollback",
            "rollback_of",
            "target",
            "url",
            "details",
        ]
        read_only_fields = fields

    def get_url(self, release: Release) -> str:
        return release.details.get("url", "")


class WhereRowSerializer(serializers.Serializer):
    environment = serializers.CharField()
    environment_id = serializers.IntegerField()
    is_active = serializers.BooleanField()
    target = serializers.CharField()
    releases = ReleaseSerializer(many=True)


class WhatRunsWhereSerializer(serializers.Serializer):
    service = serializers.IntegerField()
    service_name = serializers.CharField()
    where = WhereRowSerializer(many=True)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(name, int, description=f"Only releases of this {name}.")
            for name in ("service", "environment", "workflow")
        ]
    )
)
class ReleaseViewSet(BoundedLookupMixin, viewsets.ReadOnlyModelViewSet):
    """`?service=<id>&environment=<id>&workflow=<id>` filter the history, newest first."""

    serializer_class = ReleaseSerializer
    pagination_class = NewestFirst
    permission_classes = [WorkflowPermission]
    required_perm = {"rollback": CHANGE, "what_runs_where": VIEW, "dora": VIEW}

    def get_queryset(self):
        qs = Release.objects.filter(
            service__project__in=visible_projects(self.request.user)
        ).select_related("environment", "service", "workflow", "execution", "deployed_by")
        for param in ("service", "environment", "workflow"):
            value = query_id(self.request, param)
            if value is not None:
                qs = qs.filter(**{f"{param}_id": value})
        return qs

    @extend_schema(request=None, responses={201: ExecutionSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Redeploys this release's image digest to its environment as a new run."""
        execution = check_rollback(request.user, self.get_object())
        return Response(ExecutionSerializer(execution).data, status=201)

    @extend_schema(
        parameters=[OpenApiParameter("service", int, required=True)],
        responses=WhatRunsWhereSerializer,
    )
    @action(detail=False, methods=["get"], url_path="what-runs-where")
    def what_runs_where(self, request):
        """`?service=<id>`: per environment in order, the release each workflow runs there."""
        value = query_id(request, "service")
        if value is None:
            raise ValidationError({"service": "give the service id, e.g. ?service=3"})
        services = Service.objects.filter(project__in=visible_projects(request.user))
        service = get_object_or_404(services, pk=value)
        rows = [
            {
                "environment": row["environment"].name,
                "environment_id": row["environment"].pk,
                "is_active": row["environment"].is_active,
                "target": row["environment"].target,
                "releases": ReleaseSerializer(row["releases"], many=True).data,
            }
            for row in what_runs_where(service)
        ]
        return Response({"service": service.pk, "service_name": service.name, "where": rows})

    @extend_schema(
        parameters=[
            OpenApiParameter("service", int, required=True),
            OpenApiParameter("environment", int, description="Only this environment."),
            OpenApiParameter("period", str, enum=["7d", "30d", "90d"], default="30d"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"])
    def dora(self, request):
        """`?service=<id>[&environment=<id>][&period=7d|30d|90d]` (default 30d): DORA's four
        metrics per environment the service deployed to (executions.dora.dora_metrics gives
        the fields, units and definitions); 400 naming the field for a bad parameter."""

        params = request.query_params
        if not params.get("service", "").isdigit():
            raise ValidationError({"service": "give the service id, e.g. ?service=3"})
        period = params.get("period", "30d")
        if period not in PERIOD_DAYS:
            raise ValidationError({"period": f"use one of {', '.join(PERIOD_DAYS)}"})
        services = Service.objects.filter(project__in=visible_projects(request.user))
        service = get_object_or_404(services, pk=params["service"])
        environment = None
        if params.get("environment"):
            if not params["environment"].isdigit():
                raise ValidationError({"environment": "give the environment id"})
            environment = get_object_or_404(service.project.environments, pk=params["environment"])
        metrics = dora_for_service(service, timezone.now(), PERIOD_DAYS[period], environment)
        return Response({"service": service.pk, "period": period, "environments": metrics})
