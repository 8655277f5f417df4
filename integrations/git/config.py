"""How git runs with a service's credentials, shared by the Source stage, `git ls-remote`
(Test connection, the branch picker) and the Kubernetes build pod's clone."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# Credentials reach git only through the environment: this script answers git's prompts from
# variables, so they never appear in argv, in the URL or in the logs.
ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$WORKFLOWS_GIT_USERNAME" ;;
  *) printf '%s\\n' "$WORKFLOWS_GIT_PASSWORD" ;;
esac
"""
# The URL was validated when saved; these also refuse ext::, file:// and local paths at run
# time (redirects, submodules), and keep any credential helper of the machine out of it.
SAFE_CONFIG = [
    *("-c", "protocol.allow=never"),
    *("-c", "protocol.https.allow=always", "-c", "protocol.http.allow=always"),
    *("-c", "protocol.ssh.allow=always", "-c", "protocol.git.allow=always"),
    *("-c", "credential.helper=", "-c", "core.hooksPath=/dev/null"),
    *("-c", "advice.detachedHead=false"),
]


def public_url(url: str) -> str:
    """The URL without any user info, as it may be logged and labelled."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
