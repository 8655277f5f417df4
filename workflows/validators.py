"""Validation of user-supplied references: git URLs, names, cron schedules, kubeconfigs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import yaml
from croniter import croniter
from django.core.exceptions import ValidationError

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SCP_LIKE_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A shorter secret cannot be masked reliably: masking "ab" would blank every "ab" in a log while
# the value itself is guessable. GitLab refuses masked variables under 8 characters; so do we.
MIN_SECRET_VALUE_LENGTH = 8


def short_secret_message(length: int) -> str:
    """Why a secret of `length` characters is refused (never the value itself)."""
    return (
        f"a secret value needs at least {MIN_SECRET_VALUE_LENGTH} characters to be masked "
        f"reliably in logs and messages (this one has {length})"
    )


def validate_name(value: str) -> None:
    """Names end up in image names, Kubernetes objects and labels: DNS-1123 labels only."""
    if not NAME_RE.match(value or ""):
        raise ValidationError(
            f'"{value}" is not a valid name: use lower-case letters, digits and "-", '
            "starting and ending with a letter or digit, at most 63 characters"
        )


def validate_git_url(value: str) -> None:
    """Only network transports: `ext::` runs commands, `file://` and paths read the server's disk,
    and a leading `-` would be taken by git as an option."""
    if not value:
        raise ValidationError("a repository URL is required")
    if value.startswith("-"):
        raise ValidationError("a repository URL may not start with '-'")
    if "::" in value.split("/", 1)[0]:
        raise ValidationError(f'transport "{value.split("::", 1)[0]}::" is not allowed')
    if any(ch.isspace() for ch in value) or "\x00" in value:
        raise ValidationError("a repository URL may not contain whitespace")
    if SCP_LIKE_RE.match(value):
        return
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http", "ssh", "git"):
        raise ValidationError(
            f'scheme "{parts.scheme or value}" is not allowed; use https://, http://, ssh:// or '
            "git@host:path"
        )
    if not parts.hostname:
        raise ValidationError("the repository URL has no host")
    if parts.password:
        raise ValidationError(
            "put credentials in the service's git credentials, not in the URL (URLs are logged)"
        )


def validate_cron(value: str) -> None:
    if not value or not croniter.is_valid(value) or len(value.split()) != 5:
        raise ValidationError(
            f'"{value}" is not a valid cron schedule (five fields: minute hour day month weekday)'
        )


def validate_branch_pattern(value: str) -> None:
    if not value or value.startswith("-") or any(ch.isspace() for ch in value) or ".." in value:
        raise ValidationError(f'"{value}" is not a valid branch pattern')


def validate_kubeconfig(text: str) -> None:
    """Parse the kubeconfig as the kubernetes client does and report the client's own reason."""
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"kubeconfig is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValidationError("kubeconfig must be a YAML mapping")
    try:
        loader = KubeConfigLoader(config_dict=data)
        loader._load_cluster_info()  # the public loaders stop at the first use; parse it now
    except ConfigException as exc:
        raise ValidationError(f"kubeconfig is invalid: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"kubeconfig is invalid: {exc}") from exc
