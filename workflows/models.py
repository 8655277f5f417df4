"""Projects, services, environments, registry connections and workflow definitions."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from atmosly.crypto import EncryptedTextField
from workflows.validators import validate_git_url, validate_name


class Project(models.Model):
    """A team's space: its services, environments and registries. Members see it."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_name])
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="projects", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """A deployable service: a git repository to build, a pre-built image to deploy, or both
    (a CI workflow builds the repository, a deploy-only one deploys the image): each
    workflow's source kind says which it uses."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=63, validators=[validate_name])
    repo_url = models.CharField(
        "Git repository URL", max_length=500, blank=True, validators=[validate_git_url]
    )
    default_branch = models.TextField(default="main")
    git_username = models.CharField(max_length=255, blank=True)
    git_token = EncryptedTextField(blank=True, help_text="Password or access token; write-only.")
    git_ssh_key = EncryptedTextField(
        "Git SSH private key",
        blank=True,
        help_text="For ssh:// repositories: an unencrypted private key; write-only.",
    )
    image = models.CharField(
        "Pre-built image repository",
        max_length=500,
        blank=True,
        help_text="For deploy-only services, e.g. registry.example.com/team/app",
    )
    image_registry = models.ForeignKey(
        "RegistryConnection",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Credentials used to resolve the pre-built image.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="service_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name}"


class TargetKind(models.TextChoices):
    LOCAL = "local", "Local engine (podman)"
    KUBERNETES = "kubernetes", "Kubernetes"


class Environment(models.Model):
    """A deploy target of a project (Dev, Staging, Prod ...), in the project's order."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="environments")
    name = models.CharField(max_length=63, validators=[validate_name])
    order = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    target = models.CharField(max_length=20, choices=TargetKind.choices, default=TargetKind.LOCAL)
    kubeconfig = EncryptedTextField(blank=True, help_text="Write-only; stored encrypted.")
    in_cluster = models.BooleanField(
        default=False, help_text="Use the worker's in-cluster service account instead."
    )
    namespace = models.CharField(max_length=63, default="default", validators=[validate_name])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project__name", "order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="environment_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name}"


class RegistryProvider(models.TextChoices):
    ECR = "ecr", "Amazon ECR"
    DOCKERHUB = "dockerhub", "Docker Hub"
    GCR = "gcr", "Google Container Registry"
    GAR = "gar", "Google Artifact Registry"
    GENERIC = "generic", "Generic (Docker Registry v2)"


class RegistryConnection(models.Model):
    """Where images are pushed and pulled, with credentials encrypted at rest."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="registries")
    name = models.CharField(max_length=63, validators=[validate_name])
    provider = models.CharField(max_length=20, choices=RegistryProvider.choices)
    url = models.CharField(
        "Registry host",
        max_length=255,
        blank=True,
        help_text="e.g. 127.0.0.1:5000, docker.io, europe-docker.pkg.dev; ECR derives it.",
    )
    username = models.CharField(max_length=255, blank=True)
    password = EncryptedTextField(
        blank=True,
        help_text="Password, access token, JSON key (GCR/GAR) or AWS secret key (ECR); write-only.",
    )
    aws_access_key_id = models.CharField(max_length=128, blank=True)
    aws_region = models.CharField(max_length=32, blank=True)
    aws_endpoint_url = models.CharField(max_length=255, blank=True)
    insecure = models.BooleanField(default=False, help_text="Plain HTTP registry (local only).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="registry_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name}"


class PipelineType(models.TextChoices):
    CI = "ci", "CI"
    APP_CD = "app_cd", "App CD"
    CRON_CD = "cron_cd", "Cron CD"
    WORKER_CD = "worker_cd", "Queues & Workers CD"


class SourceKind(models.TextChoices):
    GIT = "git", "Git repository"
    IMAGE = "image", "Pre-built image (deploy-only)"


class TriggerMode(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic (webhook)"
    MANUAL = "manual", "Manual"


class RunConcurrency(models.TextChoices):
    QUEUE = "queue", "Queue (run one after another)"
    CANCEL_IN_PROGRESS = "cancel_in_progress", "Cancel the older run on the same branch"


class CronConcurrency(models.TextChoices):
    ALLOW = "Allow", "Allow"
    FORBID = "Forbid", "Forbid"
    REPLACE = "Replace", "Replace"


class Platform(models.TextChoices):
    """What the Build stage builds for; the multi-arch choice pushes one manifest list."""

    AMD64 = "linux/amd64", "AMD64"
    ARM64 = "linux/arm64", "ARM64"
    MULTI = "linux/amd64,linux/arm64", "AMD64 + ARM64 (multi-arch)"


class BuilderKind(models.TextChoices):
    """Where the Build stage runs: this machine's engine, or a pod in a Kubernetes cluster."""

    LOCAL = "local", "Local engine"
    KUBERNETES = "kubernetes", "Kubernetes pod"


class ScanThreshold(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"
    NEVER = "never", "Never fail"


SCRIPT_HOOKS = ("pre_build", "post_build", "post_push", "post_deploy")


def default_scripts() -> dict:
    return dict.fromkeys(SCRIPT_HOOKS, "")


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Workflow(models.Model):
    """A service's pipeline definition: Source → Build → Push → Deploy to environments."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="workflows")
    name = models.CharField(max_length=63, validators=[validate_name])
    is_default = models.BooleanField(default=False)
    pipeline_type = models.CharField(
        max_length=20, choices=PipelineType.choices, default=PipelineType.CI
    )
    # Source
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices, default="git")
    trigger_mode = models.CharField(max_length=10, choices=TriggerMode.choices, default="manual")
    branch_rules = models.JSONField(default=list, blank=True)
    tag_patterns = models.JSONField(default=list, blank=True)
    build_pull_requests = models.BooleanField(default=False)
    source_image = models.CharField(max_length=500, blank=True)
    run_concurrency = models.CharField(
        max_length=20, choices=RunConcurrency.choices, default=RunConcurrency.QUEUE
    )
    # Build
    dockerfile = models.CharField(max_length=500, default="Dockerfile")
    build_context = models.CharField(max_length=500, default=".")
    platform = models.CharField(max_length=40, choices=Platform.choices, default=Platform.AMD64)
    cache_enabled = models.BooleanField(default=True)
    spot_instances = models.BooleanField(default=False)
    volume_size_gb = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(500)]
    )
    builder = models.CharField(max_length=20, choices=BuilderKind.choices, default="local")
    # The cluster (kubeconfig or in-cluster account) and namespace a Kubernetes build runs in.
    builder_environment = models.ForeignKey(
        "Environment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Push
    registry = models.ForeignKey(
        RegistryConnection,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="workflows",
    )
    repository = models.CharField(max_length=255, blank=True)
    tag_template = models.CharField(max_length=128, default="{short_sha}")
    # Deploy
    service_port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    replicas = models.PositiveIntegerField(default=1, validators=[MaxValueValidator(100)])
    cron_schedule = models.CharField(max_length=100, blank=True)
    cron_time_zone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="IANA time zone the schedule reads, e.g. Europe/Paris.",
    )
    cron_concurrency = models.CharField(
        max_length=10, choices=CronConcurrency.choices, default=CronConcurrency.FORBID
    )
    # {"cpu_request": "100m", "memory_request": "64Mi", "cpu_limit": "", "memory_limit": ""}
    resources = models.JSONField(default=dict, blank=True)
    health_check_path = models.CharField(
        max_length=255, blank=True, help_text="HTTP path for readiness and liveness probes."
    )
    # Scripts, scanners, timeouts
    scripts = models.JSONField(default=default_scripts, blank=True)
    scan_detect_secrets = models.BooleanField(default=False)
    scan_trivy = models.BooleanField(default=False)
    scan_sonarqube = models.BooleanField(default=False)
    scan_fail_on = models.CharField(
        max_length=10, choices=ScanThreshold.choices, default=ScanThreshold.HIGH
    )
    stage_timeout_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(180)]
    )
    layout = models.JSONField(default=dict, blank=True)
    webhook_secret = EncryptedTextField(default=new_webhook_secret)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Optimistic concurrency: every save adds one; the API's ETag. Saving with an older version
    # (If-Match) is refused with 412 and names `updated_by`.
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["service__project__name", "service__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="workflow_unique_name"),
        ]
        # Django's view/add/change/delete give four of the spec's six permissions.
        permissions = [
            ("add_approver", "Can add approver to workflows"),
            ("approve_pipeline", "Can approve pipeline"),
        ]

    def __str__(self) -> str:
        return f"{self.service}/{self.name}"

    @property
    def platforms(self) -> list[str]:
        """The platforms the Build stage builds, e.g. ["linux/amd64", "linux/arm64"]."""
        return [p for p in self.platform.split(",") if p]

    @property
    def project(self) -> Project:
        return self.service.project

    @property
    def builds_image(self) -> bool:
        return self.source_kind == SourceKind.GIT

    @property
    def deploys(self) -> bool:
        return self.pipeline_type != PipelineType.CI


class DeployMode(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic"
    MANUAL = "manual", "Manual"


class WorkflowEnvironment(models.Model):
    """One deploy step of a workflow: an environment, in order, with its gate."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="deploy_steps")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    order = models.PositiveIntegerField(default=0)
    mode = models.CharField(max_length=10, choices=DeployMode.choices, default="automatic")
    required_approvals = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(20)])
    approver_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="approver_for"
    )
    approver_groups = models.ManyToManyField(Group, blank=True, related_name="approver_for")
    allow_self_approval = models.BooleanField(default=False)
    approval_expiry_hours = models.PositiveIntegerField(
        default=7 * 24, validators=[MinValueValidator(1), MaxValueValidator(24 * 90)]
    )
    auto_rollback = models.BooleanField(default=True)

    class Meta:
        ordering = ["workflow", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "environment"], name="workflow_environment_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} → {self.environment.name}"


class VariableScope(models.TextChoices):
    BUILD = "build", "Build time (build arg)"
    RUNTIME = "runtime", "Runtime (container env)"
    BOTH = "both", "Both"


class SecretManager(models.TextChoices):
    NONE = "", "Stored here"
    AWS = "aws", "AWS Secrets Manager"
    GCP = "gcp", "GCP Secret Manager"


class CIVariable(models.Model):
    """A build-time or runtime variable; secret values are encrypted and never shown again."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="variables")
    key = models.CharField(max_length=255)
    value = models.TextField(blank=True)
    secret_value = EncryptedTextField(blank=True)
    is_secret = models.BooleanField(default=False)
    scope = models.CharField(max_length=10, choices=VariableScope.choices, default="build")
    secret_manager = models.CharField(
        max_length=10, choices=SecretManager.choices, default="", blank=True
    )
    secret_ref = models.CharField(
        max_length=500, blank=True, help_text="Secret id/ARN or resource name in the manager."
    )

    class Meta:
        ordering = ["workflow", "key"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "key"], name="variable_unique_key"),
        ]

    def __str__(self) -> str:
        return self.key
