from __future__ import annotations

import re

from rest_framework import serializers

from executions.models import Execution, LogChunk, Report, StageRun

SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")
# The Docker distribution spec's tag grammar.
IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class RunRequestSerializer(serializers.Serializer):
    ref = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="Branch, tag or commit SHA; default: the service's default branch.",
    )

    commit = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="A commit SHA (7 to 64 hex digits) to build instead of the tip of `ref`; "
        "`ref` is then recorded as its branch.",
    )
    image_tag = serializers.CharField(
        max_length=128,
        required=False,
        allow_blank=True,
        help_text="Deploy-only (pre-built image) workflows: the tag of the image to deploy; "
        "default: the tag in the workflow's image.",
    )

    def validate_ref(self, value: str) -> str:
        if value.startswith("-") or any(c.isspace() for c in value) or ".." in value:
            raise serializers.ValidationError(f'"{value}" is not a valid branch, tag or commit')
        return value

    def validate_commit(self, value: str) -> str:
        value = value.strip().lower()
        if value and not SHA_RE.match(value):
            raise serializers.ValidationError("a commit is 7 to 64 hexadecimal digits")
        return value

    def validate_image_tag(self, value: str) -> str:
        value = value.strip()
        if value and not IMAGE_TAG_RE.match(value):
            raise serializers.ValidationError(
                "an image tag is letters, digits, '_', '.' and '-' (at most 128, not starting "
                "with '.' or '-')"
            )
        return value


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


class ExecutionSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    triggered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
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
