"""REST API for executions: list, detail, logs, reports and terminate."""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from atmosly.pagination import NewestFirst
from executions.models import Execution
from executions.serializers import ExecutionSerializer, LogChunkSerializer, ReportSerializer
from executions.services import IllegalTransition, check_rerun, check_terminate
from workflows.permissions import CHANGE, VIEW, WorkflowPermission, visible_projects


class ExecutionViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs newest first, a page at a time by cursor (`next`, `previous`; no `count`);
    `?workflow=<id>`, `?status=a,b` filter."""

    serializer_class = ExecutionSerializer
    pagination_class = NewestFirst
    permission_classes = [WorkflowPermission]
    required_perm = {
        "terminate": CHANGE,
        "deploy": CHANGE,
        "rerun": CHANGE,
        "stats": VIEW,
        "logs": VIEW,
        "reports": VIEW,
    }

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
        if params.get("workflow", "").isdigit():
            qs = qs.filter(workflow_id=params["workflow"])
        if params.get("status"):
            qs = qs.filter(status__in=params["status"].split(","))
        return qs

    @action(detail=False, methods=["get"])
    def stats(self, request):
        """Status breakdown, success rate, average duration (seconds) and daily counts of the
        runs created in the last `period` (24h, 7d, 30d, 90d), for the list's filters
        (`workflow`, `status`) and `project`. Ended runs come from the daily statistics
        (executions.analytics), so the cost does not grow with the history."""
        from executions.analytics import PERIODS, execution_stats
        from workflows.models import Workflow

        period = request.query_params.get("period", "7d")
        if period not in PERIODS:
            from atmosly.api_errors import error_response

            return error_response(
                [{"field": "period", "message": f"use one of {', '.join(PERIODS)}"}]
            )
        params = request.query_params
        workflows = Workflow.objects.filter(service__project__in=visible_projects(request.user))
        if params.get("workflow", "").isdigit():
            workflows = workflows.filter(pk=params["workflow"])
        if params.get("project", "").isdigit():
            workflows = workflows.filter(service__project_id=params["project"])
        statuses = params["status"].split(",") if params.get("status") else None
        ids = list(workflows.values_list("pk", flat=True))
        return Response(execution_stats(ids, statuses, period))

    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        execution = self.get_object()
        try:
            check_terminate(request.user, execution)
        except IllegalTransition as exc:
            return Response({"detail": str(exc)}, status=409)
        execution.refresh_from_db()
        return Response(self.get_serializer(execution).data, status=202)

    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """Runs the same commit again; `{"from_failed": true}` starts at the failed stage and
        reuses what the stages before it produced."""
        execution = self.get_object()
        from_failed = (
            request.data.get("from_failed", False) if isinstance(request.data, dict) else False
        )
        if not isinstance(from_failed, bool):
            from atmosly.api_errors import error_response

            return error_response([{"field": "from_failed", "message": "must be true or false"}])
        try:
            rerun = check_rerun(request.user, execution, from_failed=from_failed)
        except IllegalTransition:
            return Response({"detail": f"{execution} has not ended yet"}, status=409)
        return Response(self.get_serializer(rerun).data, status=201)

    @action(detail=True, methods=["post"])
    def deploy(self, request, pk=None):
        """Deploy button of a manual environment: resumes a Deployment Pending run."""
        from approvals.services import check_deploy

        execution = check_deploy(request.user, self.get_object())
        execution.refresh_from_db()
        return Response(self.get_serializer(execution).data, status=202)

    @action(detail=True, methods=["get"])
    def logs(self, request, pk=None):
        """Log chunks after `after` (a sequence number), in order; `?as=text` for plain text."""
        execution = self.get_object()
        try:
            after = int(request.query_params.get("after", -1))
        except ValueError:
            after = -1
        chunks = execution.log_chunks.filter(seq__gt=after).order_by("seq")
        if request.query_params.get("as") == "text":
            return HttpResponse("".join(c.text for c in chunks), content_type="text/plain")
        return Response(LogChunkSerializer(chunks[:1000], many=True).data)

    @action(detail=True, methods=["get"])
    def reports(self, request, pk=None):
        execution = self.get_object()
        return Response(ReportSerializer(execution.reports.all(), many=True).data)
