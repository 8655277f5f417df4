"""REST API for executions: list, detail, logs, reports and terminate."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from approvals.services import check_deploy
from atmosly.api_errors import error_response
from atmosly.api_input import MAX_ID, BoundedLookupMixin, query_id
from executions.analytics import PERIODS, execution_stats
from executions.dashboard import RunFilters, RunsNewestFirst
from executions.models import Execution, Trigger
from executions.serializers import (
    ExecutionSerializer,
    ExecutionStatsSerializer,
    LogChunkSerializer,
    ReportSerializer,
    RerunRequestSerializer,
)
from executions.services import check_terminate
from triggers.runs import check_rerun
from workflows.models import Workflow
from workflows.permissions import CHANGE, VIEW, WorkflowPermission, visible_projects

ID_FILTERS = [
    OpenApiParameter("workflow", int, description="Only runs of this workflow."),
    OpenApiParameter("status", str, description="Comma-separated statuses, e.g. failed,error."),
]
LIST_FILTERS = [
    *ID_FILTERS,
    OpenApiParameter("branch", str, description="Only runs of this branch."),
    OpenApiParameter("trigger", str, enum=[value for value, _ in Trigger.choices]),
    OpenApiParameter("who", str, description="Only runs started by this username."),
    OpenApiParameter("since", OpenApiTypes.DATE, description="From this day (inclusive)."),
    OpenApiParameter("until", OpenApiTypes.DATE, description="To this day (inclusive)."),
]


@extend_schema_view(list=extend_schema(parameters=LIST_FILTERS))
class ExecutionViewSet(BoundedLookupMixin, viewsets.ReadOnlyModelViewSet):
    """Runs newest first, a page at a time by cursor (`next`, `previous`; no `count`);
    `?workflow=<id>`, `?status=a,b`, `?branch=`, `?trigger=`, `?who=<username>`,
    `?since=`/`?until=` (days, inclusive) filter the list, as on the dashboard's runs list
    (executions.dashboard.RunFilters); a bad value is a 400 naming the parameter."""

    serializer_class = ExecutionSerializer
    pagination_class = RunsNewestFirst
    permission_classes = [WorkflowPermission]
    required_perm = {
        "terminate": CHANGE,
        "deploy": CHANGE,
        "rerun": CHANGE,
        "stats": VIEW,
        "logs": VIEW,
        "reports": VIEW,
    }

    def run_filters(self) -> dict:
        """The list's cleaned filters (RunFilters' names); ValidationError (400) naming the
        parameter otherwise."""
        params = self.request.query_params.copy()
        workflow = query_id(self.request, "workflow")
        params.pop("workflow", None)
        params.setlist("status", [s for s in params.get("status", "").split(",") if s])
        params.pop("after", None)  # the API's cursor is `cursor`
        form = RunFilters(params)
        if not form.is_valid():
            errors = form.errors.get_json_data()
            raise ValidationError({f: [e["message"] for e in errs] for f, errs in errors.items()})
        return {**form.cleaned_data, "workflow": workflow}

    def get_queryset(self):
        qs = (
            Execution.objects.filter(
                workflow__service__project__in=visible_projects(self.request.user)
            )
            # triggered_by by prefetch, not a LEFT JOIN: the join keeps SQLite from stopping
            # its index scan after one page (measured by bench/history.py).
            .select_related("workflow__service")
            .prefetch_related("triggered_by", "stages__environment")
        )
        params = self.request.query_params
        workflow = query_id(self.request, "workflow") if params.get("workflow") else None
        if workflow is not None:
            qs = qs.filter(workflow_id=workflow)
        if params.get("status"):
            qs = qs.filter(status__in=params["status"].split(","))
        return qs

    @extend_schema(
        parameters=[
            *ID_FILTERS,
            OpenApiParameter("project", int, description="Only runs of this project."),
            OpenApiParameter("period", str, enum=["24h", "7d", "30d", "90d"], default="7d"),
        ],
        responses=ExecutionStatsSerializer,
    )
    @action(detail=False, methods=["get"])
    def stats(self, request):
        """Status breakdown, success rate, average duration (seconds) and daily counts of the
        runs created in the last `period` (24h, 7d, 30d, 90d), for the list's filters
        (`workflow`, `status`) and `project`. Ended runs come from the daily statistics
        (executions.analytics), so the cost does not grow with the history."""

        period = request.query_params.get("period", "7d")
        if period not in PERIODS:
            return error_response(
                [{"field": "period", "message": f"use one of {', '.join(PERIODS)}"}]
            )
        params = request.query_params
        workflows = Workflow.objects.filter(service__project__in=visible_projects(request.user))
        workflow = query_id(request, "workflow") if params.get("workflow") else None
        if workflow is not None:
            workflows = workflows.filter(pk=workflow)
        project = query_id(request, "project") if params.get("project") else None
        if project is not None:
            workflows = workflows.filter(service__project_id=project)
        statuses = params["status"].split(",") if params.get("status") else None
        ids = list(workflows.values_list("pk", flat=True))
        return Response(execution_stats(ids, statuses, period))

    @extend_schema(request=None, responses={202: ExecutionSerializer})
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        execution = self.get_object()
        check_terminate(request.user, execution)  # a refused move: Conflict, answered 409
        execution.refresh_from_db()
        return Response(self.get_serializer(execution).data, status=202)

    @extend_schema(request=RerunRequestSerializer, responses={201: ExecutionSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """Runs the same commit again; `{"from_failed": true}` starts at the failed stage and
        reuses what the stages before it produced."""
        execution = self.get_object()
        body = RerunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        from_failed = body.validated_data["from_failed"]
        rerun = check_rerun(request.user, execution, from_failed=from_failed)
        return Response(self.get_serializer(rerun).data, status=201)

    @extend_schema(request=None, responses={202: ExecutionSerializer})
    @action(detail=True, methods=["post"])
    def deploy(self, request, pk=None):
        """Deploy button of a manual environment: resumes a Deployment Pending run."""

        execution = check_deploy(request.user, self.get_object())
        execution.refresh_from_db()
        return Response(self.get_serializer(execution).data, status=202)

    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="Only chunks after this sequence number."),
            OpenApiParameter("as", str, enum=["text"], description="`text`: plain text."),
        ],
        responses={
            (200, "application/json"): LogChunkSerializer(many=True),
            (200, "text/plain"): OpenApiTypes.STR,
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def logs(self, request, pk=None):
        """Log chunks after `after` (a sequence number), in order; `?as=text` for plain text."""
        execution = self.get_object()
        try:
            after = min(int(request.query_params.get("after", -1)), MAX_ID)
        except ValueError:
            after = -1
        chunks = execution.log_chunks.filter(seq__gt=after).order_by("seq")
        if request.query_params.get("as") == "text":
            return HttpResponse("".join(c.text for c in chunks), content_type="text/plain")
        return Response(LogChunkSerializer(chunks[:1000], many=True).data)

    @extend_schema(responses=ReportSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def reports(self, request, pk=None):
        execution = self.get_object()
        return Response(ReportSerializer(execution.reports.all(), many=True).data)
