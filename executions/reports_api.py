"""Download of one report of an execution (Trivy, SonarQube, detect-secrets ...) as a file.

`GET /api/executions/<id>/reports/<report id>/download/`: needs "View workflows" and membership
of the execution's project; a report of another project answers 404, as if it did not exist.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework.views import APIView

from atmosly.api_input import parse_id
from executions.models import Report
from workflows.permissions import VIEW, WorkflowPermission, visible_projects


class ReportDownloadView(APIView):
    permission_classes = [WorkflowPermission]
    required_perm = VIEW

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, execution_id: int, report_id: int) -> HttpResponse:
        if parse_id(execution_id) is None or parse_id(report_id) is None:
            raise Http404("No such report.")
        report = get_object_or_404(
            Report,
            pk=report_id,
            execution_id=execution_id,
            execution__workflow__service__project__in=visible_projects(request.user),
        )
        response = HttpResponse(report.content, content_type=report.content_type)
        response["Content-Disposition"] = content_disposition_header(True, report.filename)
        return response


download_report = ReportDownloadView.as_view()
