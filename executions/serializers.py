from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions.models import Execution, LogChunk, RefKind, Report, StageRun
from executions.scheduler import place_of
from workflows.validators import quoted, ref_name_problem

COMMIT_RE = re.compile(r"^[0-9a-fA-F]{7,64}$")


def _ref_name(value: str) -> None:
    problem = ref_name_problem(value)
    if problem:
        raise serializers.ValidationError(f"{quoted(value)} is not a valid name: it {problem}")


# The Docker distribution spec's tag grammar.
IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class RunRequestSerializer(serializers.Serializer):
    """What to run (`POST /api/workflows/<id>/run/` and the Run dialog).

    At most one of `branch`, `tag` or `ref` names the ref: the field chosen says what kind it
    is, and a bare `ref` is a branch or a tag, which the repository decides. `commit` alone
    builds that commit; with a branch (or ref) it pins that exact commit, recorded as that
    branch. Nothing: the service's default branch. `image_tag` is for deploy-only workflows."""

    branch = serializers.CharField(required=False, trim_whitespace=False, validators=[_ref_name])
    tag = serializers.CharField(required=False, trim_whitespace=False, validators=[_ref_name])
    ref = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Branch or tag name; default: the service's default branch.",
    )
    commit = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="A commit id (7 to 64 hex digits): alone, that commit is built; with `branch` "
        "or `ref`, that exact commit of it.",
    )
    image_tag = serializers.CharField(
        max_length=128,
        required=False,
        allow_blank=True,
        help_text="Deploy-only (pre-built image) workflows: the tag of the image to deploy; "
        "default: the tag in the workflow's image.",
    )

    # A form-encoded POST (the browsable API) carries its CSRF token among the fields.
    ignored_keys = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data):
        """Refuses a body that is not an object, and keys it does not know: `{"brnach": "x"}`
        must not quietly build the default branch (GitHub's workflow_dispatch refuses
        unexpected inputs too)."""
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {"non_field_errors": ['the body is a JSON object, e.g. {"branch": "main"}']}
            )
        unknown = sorted(set(data) - set(self.fields) - self.ignored_keys)
        if unknown:
            known = ", ".join(self.fields)
            raise serializers.ValidationError(
                {key: [f"unknown field; a run takes {known}"] for key in unknown}
            )
        return super().to_internal_value(data)

    def validate_ref(self, value: str) -> str:
        if value:
            _ref_name(value)
        return value

    def validate_commit(self, value: str) -> str:
        value = value.strip()
        if value and not COMMIT_RE.match(value):
            raise serializers.ValidationError(
                f'"{value[:100]}" is not a commit id: 7 to 64 hexadecimal digits'
            )
        return value.lower()

    def validate_image_tag(self, value: str) -> str:
        value = value.strip()
        if value and not IMAGE_TAG_RE.match(value):
            raise serializers.ValidationError(
                "an image tag is letters, digits, '_', '.' and '-' (at most 128, not starting "
                "with '.' or '-')"
            )
        return value

    def validate(self, attrs: dict) -> dict:
        given = [k for k in ("branch", "tag", "ref") if attrs.get(k)]
        if len(given) > 1:
            raise serializers.ValidationError(
                {given[1]: f"give one of branch, tag or ref, not {' and '.join(given)}"}
            )
        if attrs.get("tag") and attrs.get("commit"):
            raise serializers.ValidationError(
                {"commit": "a tag names its commit already: give the tag or the commit"}
            )
        return attrs

    def target(self) -> tuple[str, str]:
        """(kind, name) of the ref named; ("", "") when none is (the default branch, or only a
        commit)."""
        for field, kind in (
            ("branch", RefKind.BRANCH),
            ("tag", RefKind.TAG),
            ("ref", RefKind.BRANCH_OR_TAG),
        ):
            if self.validated_data.get(field):
                return kind, self.validated_data[field]
        return "", ""


class StageRunSerializer(serializers.ModelSerializer):
    environment: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
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


class QueuePlaceSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="1 starts next (executions.scheduler).")
    reason = serializers.CharField(help_text="Why it waits.")


class ExecutionSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    triggered_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
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
    def get_queue(self, obj: Execution) -> dict[str, Any] | None:
        # One queue computation per request, however many runs a list shows (DRF hands every
        # item the same context dict).
        context = cast(dict[str, Any], self.context)
        place = place_of(obj, context.setdefault("_queue_cache", {}))
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
