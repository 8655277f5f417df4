"""Validation of user-supplied references: git URLs, names, cron schedules, kubeconfigs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import CroniterBadDateError, croniter
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key
from django.core.exceptions import ValidationError
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import KubeConfigLoader

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SCP_LIKE_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A shorter secret cannot be masked reliably: masking "ab" would blank every "ab" in a log while
# the value itself is guessable. GitLab refuses masked variables under 8 characters; so do we.
MIN_SECRET_VALUE_LENGTH = 8


# A value quoted back in a message is cut to this many characters: a 5,000-character name quoted
# whole fills the page and the API answer with the user's own input.
QUOTE_LIMIT = 64


def quoted(value: object) -> str:
    """`value` in double quotes for a message, cut to QUOTE_LIMIT characters with "…"."""
    text = str(value)
    if len(text) > QUOTE_LIMIT:
        text = text[:QUOTE_LIMIT] + "…"
    return f'"{text}"'


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
            f'{quoted(value)} is not a valid name: use lower-case letters, digits and "-", '
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


# A schedule must fire at least once in this many years from now: 29 February fires every four
# years and stays valid; 30 February never does and is refused.
CRON_HORIZON_YEARS = 5
# Ref names are stored whole up to this size. Git itself has no fixed limit, but PostgreSQL's
# btree index holds at most ~2700 bytes a row, and the run's claim is unique on (workflow, ref).
MAX_REF_BYTES = 2048
REF_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def validate_cron(value: str) -> None:
    """Five fields (minute hour day month weekday) that fire at least once in the next
    `CRON_HORIZON_YEARS` years; the reason says which of the two failed."""
    if not value or not croniter.is_valid(value) or len(value.split()) != 5:
        raise ValidationError(
            f"{quoted(value)} is not a valid cron schedule (five fields: minute hour day month weekday)"
        )
    now = datetime.now()
    try:
        first = croniter(value, now).get_next(datetime)
    except (CroniterBadDateError, ValueError, OverflowError):
        first = None
    if first is None or first - now > timedelta(days=366 * CRON_HORIZON_YEARS):
        raise ValidationError(
            f"{quoted(value)} never fires: no date matches it in the next {CRON_HORIZON_YEARS} years"
        )


def validate_time_zone(value: str) -> None:
    """An IANA time zone name such as Europe/Paris or UTC, as zoneinfo knows it."""
    try:
        if not value or value != value.strip() or "\x00" in value:
            raise ValueError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValidationError(
            f"{quoted(value)} is not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)"
        ) from exc


def ref_name_problem(value: str) -> str:
    """Why `value` is not a valid branch or tag name by `git check-ref-format --branch`'s
    rules (git-check-ref-format(1)), or "" when it is one."""
    if not value:
        return "is empty"
    if len(value.encode()) > MAX_REF_BYTES:
        return f"is longer than {MAX_REF_BYTES} bytes"
    if value.startswith("-"):
        return 'may not start with "-"'
    if value == "@" or "@{" in value:
        return 'may not be "@" or contain "@{"'
    if REF_FORBIDDEN_RE.search(value):
        return "may not contain spaces, control characters or any of ~ ^ : ? * [ \\"
    if ".." in value:
        return 'may not contain ".."'
    if value.startswith("/") or value.endswith("/") or "//" in value:
        return 'may not start or end with "/" or contain "//"'
    if value.endswith("."):
        return 'may not end with "."'
    for part in value.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return 'no part may start with "." or end with ".lock"'
    return ""


def validate_ref_name(value: str) -> None:
    problem = ref_name_problem(value)
    if problem:
        raise ValidationError(f"{quoted(value)} is not a valid branch or tag name: it {problem}")


def validate_branch_pattern(value: str) -> None:
    if not value or value.startswith("-") or any(ch.isspace() for ch in value) or ".." in value:
        raise ValidationError(f"{quoted(value)} is not a valid branch pattern")


def validate_kubeconfig(text: str) -> None:
    """Parse the kubeconfig as the kubernetes client does and report the client's own reason."""
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


SSH_KEY_MAX_LENGTH = 16 * 1024  # an RSA-8192 private key in PEM is under 7 KB


def check_ssh_private_key(value: str) -> str:
    """An SSH private key as git's ssh reads it (OpenSSH or PEM), unencrypted: a run or a Test
    connection cannot type a passphrase (ssh runs with BatchMode). Returns it with Unix line
    ends and one final newline (ssh refuses a key without it); "" stays "". The message never
    quotes the key."""
    text = (value or "").replace("\r\n", "\n").strip()
    if not text:
        return ""
    data = text.encode()
    load = load_ssh_private_key if b"BEGIN OPENSSH PRIVATE KEY" in data else load_pem_private_key
    try:
        load(data, password=None)
    except TypeError:
        raise ValidationError(
            "the key is protected by a passphrase: give a key without one (runs cannot type it)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValidationError(
            "not an SSH private key: paste the whole private key file, from its "
            '"-----BEGIN … PRIVATE KEY-----" line to its END line'
        ) from None
    return text + "\n"
