"""REST API for approvals: list (and "waiting for me"), detail with its audit, approve, reject."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from approvals.models import Approval, ApprovalEvent, ApprovalRequest, Decision
from approvals.services import approval_card, check_decide, waiting_for
from atmosly.api_input import BoundedLookupMixin
from workflows.permissions import APPROVE, VIEW, WorkflowPermission, visible_projects


class ApprovalSerializer(serializers.ModelSerializer):
    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Approval
        fields = ["user", "decision", "comment", "created_at"]


class EventSerializer(serializers.ModelSerializer):
    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ApprovalEvent
        fields = ["kind", "user", "comment", "detail", "at"]


class ApprovalRequestSerializer(serializers.ModelSerializer):
    environment = serializers.CharField(
        source="stage_run.environment.name", read_only=True, allow_null=True
    )
    execution_number = serializers.IntegerField(source="execution.number", read_only=True)
    workflow = serializers.IntegerField(source="execution.workflow_id", read_only=True)
    decisions = ApprovalSerializer(many=True, read_only=True)
    events = EventSerializer(many=True, read_only=True)
    approvals = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "execution",
            "execution_number",
            "workflow",
            "environment",
            "status",
            "reason",
            "required",
            "approvals",
            "created_at",
            "expires_at",
            "decided_at",
            "decisions",
            "events",
        ]

    def get_approvals(self, obj: ApprovalRequest) -> int:
        return sum(1 for d in obj.decisions.all() if d.decision == Decision.APPROVE)


class DecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("mine", str, description="Any value: only requests waiting for me.")
        ]
    )
)
class ApprovalRequestViewSet(BoundedLookupMixin, viewsets.ReadOnlyModelViewSet):
    """`?mine=1` lists the open requests waiting for the current user's decision (paginated
    like every list)."""

    serializer_class = ApprovalRequestSerializer
    permission_classes = [WorkflowPermission]
    required_perm = {
        "approve": APPROVE,
        "reject": APPROVE,
        "list": VIEW,
        "retrieve": VIEW,
        "card": VIEW,
    }

    def get_queryset(self):
        return (
            ApprovalRequest.objects.filter(
                execution__workflow__service__project__in=visible_projects(self.request.user)
            )
            .select_related("stage_run__environment", "execution")
            .prefetch_related("decisions__user", "events__user")
        )

    @action(detail=True, methods=["get"])
    def card(self, request, pk=None):
        """What the approver is approving (approvals.services.approval_card): commits since the
        release the environment runs, image and digest, manifest diff, scan summary, N-of-M
        with who decided, expiry, and whether this user may decide (`can_decide`, `refusal`)."""
        return Response(approval_card(request.user, self.get_object()))

    def list(self, request, *args, **kwargs):
        if request.query_params.get("mine"):
            visible = set(self.get_queryset().values_list("pk", flat=True))
            mine = [r for r in waiting_for(request.user) if r.pk in visible]
            page = self.paginate_queryset(mine)
            return self.get_paginated_response(self.get_serializer(page, many=True).data)
        return super().list(request, *args, **kwargs)

    def decide(self, request, decision: str):
        approval_request = self.get_object()
        body = DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decided = check_decide(
            request.user, approval_request, decision, body.validated_data["comment"]
        )
        return Response(self.get_serializer(decided).data)

    @extend_schema(request=DecisionSerializer, responses=ApprovalRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self.decide(request, Decision.APPROVE)

    @extend_schema(request=DecisionSerializer, responses=ApprovalRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self.decide(request, Decision.REJECT)
