from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions.models import Execution, LogChunk, RefKind, Report, StageRun
from workflows.validators import ref_name_problem

COMMIT_RE = re.compile(r"^[0-9a-fA-F]{7,64}$")


def _ref_name(value: str) -> str:
    problem = ref_name_problem(value)
    if problem:
        raise serializers.ValidationError(f'"{value[:100]}" is not a valid name: it {problem}')
    return value


class RunRequestSerializer(serializers.Serializer):
    """What to build: at most one of `branch`, `tag`, `commit` or `ref`. The field chosen says
    what kind of ref it is; a bare `ref` is a branch or a tag, and the repository says which."""

    branch = serializers.CharField(required=False, trim_whitespace=False, validators=[_ref_name])
    tag = serializers.CharField(required=False, trim_whitespace=False, validators=[_ref_name])
    commit = serializers.CharField(required=False, help_text="A commit id, 7 to 64 hex digits.")
    ref = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Branch or tag name; default: the service's default branch.",
    )

    def validate_ref(self, value: str) -> str:
        return _ref_name(value) if value else value

    def validate_commit(self, value: str) -> str:
        if not COMMIT_RE.match(value):
            raise serializers.ValidationError(f'"{value[:100]}" is not a commit id (hex digits)')
        return value.lower()

    def validate(self, attrs: dict) -> dict:
        given = [k for k in ("branch", "tag", "commit", "ref") if attrs.get(k)]
        if len(given) > 1:
            raise serializers.ValidationError(
                {given[1]: f"give one of branch, tag, commit or ref, not {' and '.join(given)}"}
            )
        return attrs

    def target(self) -> tuple[str, str]:
        """(kind, name) of what to build; ("", "") for the service's default branch."""
        for field, kind in (
            ("branch", RefKind.BRANCH),
            ("tag", RefKind.TAG),
            ("commit", RefKind.COMMIT),
            ("ref", RefKind.BRANCH_OR_TAG),
        ):
            if self.validated_data.get(field):
                return kind, self.validated_data[field]
        return "", ""


class StageRunSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="name", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True)

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


class QueuePlaceSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="1 starts next (executions.scheduler).")
    reason = serializers.CharField(help_text="Why it waits.")


class ExecutionSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    triggered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    stages = StageRunSerializer(many=True, read_only=True)
    workflow_name = serializers.CharField(source="workflow.name", read_only=True)
    service = serializers.CharField(source="workflow.service.name", read_only=True)
    queue = serializers.SerializerMethodField(
        help_text="For a queued run (Pending, or resumed and not yet taken by a worker): its "
        "`position` (1 starts next) and the `reason` it waits; null otherwise."
    )

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
            "ref_kind",
            "branch",
            "tag",
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
            "queue",
            "stages",
        ]

    @extend_schema_field(QueuePlaceSerializer(allow_null=True))
    def get_queue(self, obj: Execution) -> dict | None:
        from executions.scheduler import place_of

        place = place_of(obj, self.context.setdefault("_queue_cache", {}))
        return {"position": place.position, "reason": place.reason} if place else None


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
