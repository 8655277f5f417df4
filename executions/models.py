"""Executions (runs of a workflow), their stage runs, ordered log chunks and reports."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from executions.status import (
    ACTIVE,
    TERMINAL,
    UNFINISHED,
    WAITING,
    ExecutionStatus,
    StageStatus,
)


class Trigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    WEBHOOK = "webhook", "Webhook"
    API = "api", "API"
    RERUN = "rerun", "Re-run"
    ROLLBACK = "rollback", "Rollback"


class RefKind(models.TextChoices):
    """What the run was asked to build, as its origin said: the push event's ref, or the field
    the user filled in. Never guessed from the name's shape (a branch may be called `cafe1234`)."""

    BRANCH = "branch", "Branch"
    TAG = "tag", "Tag"
    PULL_REQUEST = "pull_request", "Pull request"
    COMMIT = "commit", "Commit"
    # A bare `ref` from the API: Source asks the repository whether it names a branch or a tag.
    BRANCH_OR_TAG = "branch_or_tag", "Branch or tag"


class StageKind(models.TextChoices):
    SOURCE = "source", "Source"
    SCRIPT = "script", "Custom script"
    SCAN = "scan", "Security scan"
    BUILD = "build", "Build"
    PUSH = "push", "Push"
    DEPLOY = "deploy", "Deploy"


class Execution(models.Model):
    """One run of a workflow. Its status only changes through executions.services."""

    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="executions"
    )
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger_detail = models.TextField(blank=True)
    # Who pushed the commit, for webhook runs (no Django user may exist for them); matched by
    # login or e-mail to stop the pusher from approving their own deploy.
    actor_login = models.CharField(max_length=255, blank=True)
    actor_email = models.CharField(max_length=255, blank=True)
    # Ref names are stored whole (Git allows long ones); see workflows.validators.MAX_REF_BYTES.
    branch = models.TextField(blank=True, help_text="The branch the user or the push named.")
    tag = models.TextField(blank=True, help_text="The tag the user or the push named.")
    ref = models.TextField(blank=True, help_text="Branch, tag or commit asked for.")
    ref_kind = models.CharField(
        max_length=20, choices=RefKind.choices, blank=True, help_text="What `ref` names."
    )
    commit_sha = models.CharField(max_length=64, blank=True)
    commit_message = models.CharField(max_length=500, blank=True)
    image = models.CharField(max_length=500, blank=True)
    image_digest = models.CharField(max_length=100, blank=True)
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    status = models.CharField(
        max_length=20, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING
    )
    status_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # The worker holding the run, and when it last said it is alive (crash recovery).
    worker_id = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="execution_number_once"),
        ]
        # Each matches a filter plus the newest-first ordering, so a page of the history reads
        # its rows in index order and stops (bench/history.py measures them at 1,000,000 runs).
        indexes = [
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["-created_at", "-id"], name="execution_newest"),
            models.Index(
                fields=["workflow", "-created_at", "-id"], name="execution_workflow_newest"
            ),
            models.Index(fields=["status", "-created_at", "-id"], name="execution_status_newest"),
            # The runs list's filters, one per term of its per-workflow UNION (dashboard.py).
            models.Index(
                fields=["workflow", "status", "-created_at", "-id"],
                name="execution_wf_status_newest",
            ),
            models.Index(
                fields=["workflow", "branch", "-created_at", "-id"],
                name="execution_wf_branch_newest",
            ),
            models.Index(
                fields=["workflow", "trigger", "-created_at", "-id"],
                name="execution_wf_trigger_newest",
            ),
            models.Index(
                fields=["workflow", "triggered_by", "-created_at", "-id"],
                name="execution_wf_who_newest",
            ),
            # The few runs that have not ended, for analytics (the rest is in DailyStat).
            models.Index(
                fields=["created_at"],
                condition=models.Q(status__in=UNFINISHED),
                name="execution_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} #{self.number}"

    @property
    def ref_name(self) -> str:
        """What to show for the ref: the branch or tag name the run was asked for (re-runs keep
        it, though they check out the commit), else the commit in short."""
        if self.branch or self.tag:
            return self.branch or self.tag
        if self.ref_kind == RefKind.COMMIT or (self.commit_sha and self.ref == self.commit_sha):
            return self.ref[:12]
        return self.ref

    @property
    def duration_seconds(self) -> float | None:
        """Started → finished, in seconds; None until the run has both."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def is_waiting(self) -> bool:
        return self.status in WAITING


class DailyStat(models.Model):
    """Runs that ended, per day of creation (UTC), workflow and terminal status: the analytics'
    counts and durations without reading the history. Written in the same transaction as the
    move to a terminal status (executions.services.do_change_status)."""

    day = models.DateField()
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=ExecutionStatus.choices)
    count = models.PositiveIntegerField(default=0)
    # Runs with both a start and an end, and the sum of their lengths, for the average.
    timed_count = models.PositiveIntegerField(default=0)
    duration_seconds = models.FloatField(default=0.0)
    # Runs that started, and the sum of their queue times (created → started), in seconds.
    queued_count = models.PositiveIntegerField(default=0)
    queue_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "workflow", "status"], name="daily_stat_once"),
        ]
        # Analytics sums a period's rows by (day, status): this index holds every column it
        # reads, in that order, so SQLite reads the index alone and sorts nothing (4x faster
        # over 90 days at 1,000,000 runs; bench/history.py).
        indexes = [
            models.Index(
                fields=[
                    "day",
                    "status",
                    "workflow",
                    "count",
                    "timed_count",
                    "duration_seconds",
                    "queued_count",
                    "queue_seconds",
                ],
                name="daily_stat_sums",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.workflow_id} {self.status}: {self.count}"


class DailyStageStat(models.Model):
    """Stage runs that ran (a start and an end, not reused from an earlier run) of the runs
    that ended, per day of the run's creation (UTC), workflow, the run's terminal status and
    stage name: the analytics' stage durations without reading the history. Written with the
    run's DailyStat row, or when a stage of an ended run ends after it."""

    day = models.DateField()
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=ExecutionStatus.choices)
    name = models.CharField(max_length=100)
    count = models.PositiveIntegerField(default=0)
    duration_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "workflow", "status", "name"], name="daily_stage_stat_once"
            ),
        ]
        # Summed by (day, name): every column read, in that order (see DailyStat's index).
        indexes = [
            models.Index(
                fields=["day", "name", "workflow", "status", "count", "duration_seconds"],
                name="daily_stage_stat_sums",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.workflow_id} {self.status} {self.name}: {self.count}"


class StatusChange(models.Model):
    """Audit of every status move of an execution: from, to, when and why."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20, choices=ExecutionStatus.choices)
    to_status = models.CharField(max_length=20, choices=ExecutionStatus.choices)
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]


class StageRun(models.Model):
    """One stage of one execution (and one per environment for deploys)."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=StageKind.choices)
    name = models.CharField(max_length=100)
    environment = models.ForeignKey(
        "workflows.Environment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    workflow_environment = models.ForeignKey(
        "workflows.WorkflowEnvironment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(
        max_length=12, choices=StageStatus.choices, default=StageStatus.PENDING
    )
    error = models.CharField(max_length=500, blank=True)
    output = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["execution", "position"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "position"], name="stage_position_once"),
        ]

    def __str__(self) -> str:
        return f"{self.execution} {self.name}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class LogChunk(models.Model):
    """An ordered piece of a stage's log; `seq` orders all chunks of the execution."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="log_chunks")
    stage_run = models.ForeignKey(StageRun, on_delete=models.CASCADE, related_name="log_chunks")
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "seq"], name="log_seq_once"),
        ]


class Report(models.Model):
    """A report file of an execution (Trivy, SonarQube, detect-secrets ...)."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="reports")
    stage_run = models.ForeignKey(
        StageRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    kind = models.CharField(max_length=30)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, default="application/json")
    content = models.TextField()
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "created_at"]


# --- Releases and deploy locks (deploy) ---


class Release(models.Model):
    """What an environment runs: one row per successful deploy, and one per rollback."""

    environment = models.ForeignKey(
        "workflows.Environment", on_delete=models.CASCADE, related_name="releases"
    )
    service = models.ForeignKey(
        "workflows.Service", on_delete=models.CASCADE, related_name="releases"
    )
    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="releases"
    )
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="releases")
    stage_run = models.ForeignKey(
        StageRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="releases"
    )
    image = models.CharField(max_length=500)
    image_digest = models.CharField(max_length=100, blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    is_rollback = models.BooleanField(default=False)
    # For a rollback: the earlier release whose image it brought back.
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rollbacks"
    )
    target = models.CharField(max_length=20, blank=True)
    # Where it runs: namespace and objects (Kubernetes), host port and URL (local engine).
    details = models.JSONField(default=dict, blank=True)
    # The release the environment runs now for its workflow: exactly one per (environment,
    # workflow), moved by do_record_release, so "what runs where" never scans the history.
    is_current = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["environment", "workflow", "created_at"]),
            models.Index(fields=["service", "-created_at", "-id"], name="release_service_newest"),
            models.Index(
                fields=["service"], condition=models.Q(is_current=True), name="release_current"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "workflow"],
                condition=models.Q(is_current=True),
                name="one_current_release",
            ),
        ]

    def __str__(self) -> str:
        return f"release #{self.pk} of {self.service.name} in {self.environment.name}"

    @property
    def version(self) -> str:
        """The commit, or for a deploy-only workflow the image digest, in short."""
        if self.commit_sha:
            return self.commit_sha[:12]
        return self.image_digest.removeprefix("sha256:")[:12] or self.image


class DeployLock(models.Model):
    """Held by the one deploy running for a service in an environment. The unique constraint
    makes a second INSERT fail, so the database itself refuses two deploys at once."""

    service = models.ForeignKey("workflows.Service", on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(
        "workflows.Environment", on_delete=models.CASCADE, related_name="+"
    )
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="+")
    stage_run = models.ForeignKey(StageRun, on_delete=models.CASCADE, related_name="+")
    acquired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment"], name="one_deploy_per_environment"
            ),
        ]

    def __str__(self) -> str:
        return f"deploy lock of {self.service_id} in {self.environment_id} by {self.execution}"
