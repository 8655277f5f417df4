from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions.models import Execution, LogChunk, Report, StageRun


class RunRequestSerializer(serializers.Serializer):
    ref = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="Branch, tag or commit SHA; default: the service's default branch.",
    )

    def validate_ref(self, value: str) -> str:
        if value.startswith("-") or any(c.isspace() for c in value) or ".." in value:
            raise serializers.ValidationError(f'"{value}" is not a valid branch, tag or commit')
        return value


class StageRunSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = StageRun
        fields = [
            "id",
            "position",
            "kind",
            "name",
            "environment",
            "status",
            "error",
            "started_at",
            "finished_at",
            "duration_seconds",
        ]


class ExecutionSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    triggered_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    stages = StageRunSerializer(many=True, read_only=True)
    workflow_name = serializers.CharField(source="workflow.name", read_only=True)
    service = serializers.CharField(source="workflow.service.name", read_only=True)

    class Meta:
        model = Execution
        fields = [
            "id",
            "workflow",
            "workflow_name",
            "service",
            "number",
            "trigger",
            "triggered_by",
            "trigger_detail",
            "ref",
            "branch",
            "commit_sha",
            "commit_message",
            "image",
            "image_digest",
            "status",
            "status_display",
            "status_reason",
            "created_at",
            "started_at",
            "finished_at",
            "rerun_of",
            "stages",
        ]


class LogChunkSerializer(serializers.ModelSerializer):
    class Meta:
        model = LogChunk
        fields = ["seq", "stage_run", "text", "created_at"]


class ReportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = ["id", "kind", "filename", "content_type", "summary", "created_at", "download_url"]

    def get_download_url(self, obj: Report) -> str:
        from django.urls import reverse

        return reverse("execution-report-download", args=[obj.execution_id, obj.pk])


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: "yes" or 1 are refused rather than guessed."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError("must be true or false")
        return data


class RerunRequestSerializer(serializers.Serializer):
    from_failed = StrictBooleanField(
        required=False,
        default=False,
        help_text="Start at the failed stage and reuse what the stages before it produced.",
    )


@extend_schema_field(
    {
        "type": "object",
        "properties": {"day": {"type": "string", "format": "date"}},
        "required": ["day"],
        "additionalProperties": {"type": "integer"},
        "description": "A day and the number of runs created that day per status.",
    }
)
class DayCountsField(serializers.DictField):
    pass


class ExecutionStatsSerializer(serializers.Serializer):
    """The answer of `GET /api/executions/stats/` (executions.analytics.execution_stats)."""

    period = serializers.ChoiceField(choices=["24h", "7d", "30d", "90d"])
    since = serializers.DateTimeField()
    total = serializers.IntegerField()
    by_status = serializers.DictField(
        child=serializers.IntegerField(), help_text="Runs per status (every status is listed)."
    )
    success_rate = serializers.FloatField(
        allow_null=True, help_text="Succeeded / (Succeeded + Failed + Error); null when none ended."
    )
    average_duration_seconds = serializers.FloatField(allow_null=True)
    by_day = serializers.ListField(child=DayCountsField())
