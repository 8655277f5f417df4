"""Webhook endpoints, the delivery log, and the claims that make one push start one run.

Two unique constraints do the deduplication, so it holds when copies arrive at the same moment:

- `WebhookDelivery.webhook_delivery_once`: one accepted delivery per (hook, provider, delivery
  id). A provider resending a delivery fails to insert a second "first" row.
- `TriggeredCommit.webhook_commit_once`: one run per (workflow, ref, commit). Two hooks firing
  (organisation and repository), or GitHub Enterprise's second push with before == after, have
  different delivery ids but the same commit: the second insert fails and starts nothing.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class Provider(models.TextChoices):
    GITHUB = "github", "GitHub"
    GITLAB = "gitlab", "GitLab"
    BITBUCKET = "bitbucket", "Bitbucket Cloud"


class Outcome(models.TextChoices):
    TRIGGERED = "triggered", "Triggered"
    IGNORED = "ignored", "Ignored"
    REJECTED = "rejected", "Rejected"


def new_hook_id() -> str:
    return secrets.token_urlsafe(18)


class WebhookEndpoint(models.Model):
    """A workflow's hook URL, `/hooks/<provider>/<hook_id>/`, made the first time it is asked for.

    The id is random so the URL cannot be guessed from a workflow's number; the workflow's
    `webhook_secret` authenticates each delivery."""

    workflow = models.OneToOneField(
        "workflows.Workflow", on_delete=models.CASCADE, related_name="webhook_endpoint"
    )
    hook_id = models.CharField(max_length=64, unique=True, default=new_hook_id, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # The secret is shown once, when it is made; this says when that was (None: never shown).
    secret_shown_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"hook of {self.workflow}"


class WebhookDelivery(models.Model):
    """One request a provider sent to a hook, what it said, and what we did with it."""

    project = models.ForeignKey(
        "workflows.Project",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_deliveries",
    )
    workflow = models.ForeignKey(
        "workflows.Workflow",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_deliveries",
        help_text="The workflow whose hook received it.",
    )
    provider = models.CharField(max_length=10, choices=Provider.choices)
    delivery_id = models.CharField(max_length=100, blank=True)
    event = models.CharField(max_length=100, blank=True, help_text="The provider's event name.")
    kind = models.CharField(max_length=20, blank=True, help_text="push, tag, pull_request ...")
    # Ref names are stored whole, never cut (see workflows.validators.MAX_REF_BYTES).
    ref = models.TextField(blank=True)
    branch = models.TextField(blank=True)
    tag = models.TextField(blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    before_sha = models.CharField(max_length=64, blank=True)
    repository_name = models.CharField(max_length=255, blank=True)
    repository_url = models.CharField(max_length=500, blank=True)
    sender = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    status_code = models.PositiveSmallIntegerField(default=202)
    # A chosen subset: signature and token headers are never stored.
    headers = models.JSONField(default=dict, blank=True)
    # The raw body as received (at most 5 MB); empty for rejected deliveries, which were never
    # authenticated and so are not kept.
    body = models.BinaryField(blank=True, default=b"")
    body_size = models.PositiveIntegerField(default=0)
    executions = models.ManyToManyField(
        "executions.Execution", blank=True, related_name="webhook_deliveries"
    )
    # True only on the first accepted copy of a delivery id: the row the constraint holds.
    first_copy = models.BooleanField(default=False, editable=False)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="redeliveries"
    )
    redelivered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "provider", "delivery_id"],
                condition=models.Q(first_copy=True),
                name="webhook_delivery_once",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "-received_at"]),
            models.Index(fields=["workflow", "-received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.event or '?'} #{self.pk}"

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:12]


class TriggeredCommit(models.Model):
    """The claim that a workflow has started its run for a commit at a ref.

    Inserted in the same transaction as the run, before it: a second delivery of the same push
    fails on the unique constraint and starts nothing, even when both arrive at once."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    ref = models.TextField(help_text="refs/heads/…, refs/tags/… or pull/<n>")
    commit_sha = models.CharField(max_length=64)
    delivery = models.ForeignKey(
        WebhookDelivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="claims"
    )
    # Deleting the run frees the commit, so a redeliver can start it again.
    execution = models.OneToOneField(
        "executions.Execution",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="triggered_commit",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "ref", "commit_sha"], name="webhook_commit_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} {self.ref} @ {self.commit_sha[:12]}"


class ScheduledJob(models.Model):
    """A Cron CD release's schedule on the local target: when its job runs next, in the
    workflow's time zone (integrations.local_engine.cron)."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(
        "workflows.Environment", on_delete=models.CASCADE, related_name="+"
    )
    cron = models.CharField(max_length=100)
    time_zone = models.CharField(max_length=64, default="UTC")
    # None: stopped (see last_error); a due time is only ever written once it is worked out.
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workflow", "environment"], name="scheduled_job_once"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} on {self.environment.name}: {self.cron} ({self.time_zone})"
