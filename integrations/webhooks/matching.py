"""Which workflows a webhook starts: repository, branch rules, tag patterns, pull requests.

A delivery that arrives at any workflow's hook is matched against every workflow of the same
project that builds the same repository and whose trigger is automatic (several services in
one repository each get their own run). For each of them:

Branches (the workflow's `branch_rules`, each `{"pattern": ..., "match": "exact"|"wildcard"}`)
- `exact` compares the whole name, case-sensitively: `main` matches only `main`.
- `wildcard` is a glob (wcmatch, with GLOBSTAR):
  - `*` matches any characters except `/`: `release/*` matches `release/1.2`, not
    `release/1.2/hotfix`; `feature-*` matches `feature-login`, not `feature-x/y`.
  - `**` as a whole path segment matches any number of segments, `/` included: `release/**`
    matches `release/1.2` and `release/1.2/hotfix`; `**/hotfix` matches `hotfix` and
    `team/a/hotfix`; `**` alone matches every branch. Inside a segment (`feat**`) it is `*`.
  - `?` matches one character except `/`; `[abc]`, `[a-z]` and `[!abc]` match one character of
    (or not of) the set. No braces, no `!` negation of whole patterns.
Tags (`tag_patterns`, a list of patterns) use the same glob rules: `v*` matches `v1.2.3`;
a pattern without wildcards matches only that tag.
Pull requests start CI workflows that have "build pull requests" on, whatever their branches.

Repositories are compared by host and path, ignoring the scheme, user, port, a trailing `.git`
and case, so `git@github.com:Org/App.git` and `https://github.com/org/app` are the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from wcmatch import glob

from integrations.webhooks.events import Kind, RefChange
from workflows.models import PipelineType, Workflow

FLAGS = glob.GLOBSTAR | glob.DOTGLOB | glob.FORCEUNIX
SCP_LIKE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(.+)$")


def glob_matches(name: str, pattern: str) -> bool:
    return bool(name) and glob.globmatch(name, pattern, flags=FLAGS)


def matching_branch_rule(branch: str, rules: Iterable) -> dict | None:
    """The first rule that matches the branch, or None."""
    for rule in rules or ():
        if not isinstance(rule, dict) or not isinstance(rule.get("pattern"), str):
            continue
        pattern = rule["pattern"]
        if rule.get("match") == "wildcard":
            if glob_matches(branch, pattern):
                return rule
        elif branch == pattern:
            return rule
    return None


def matching_tag_pattern(tag: str, patterns: Iterable) -> str | None:
    for pattern in patterns or ():
        if isinstance(pattern, str) and glob_matches(tag, pattern):
            return pattern
    return None


def repository_key(url: str) -> str:
    """`host/path` of a repository URL, lower case, without `.git`; "" if there is none."""
    url = (url or "").strip()
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    else:
        match = SCP_LIKE.match(url)
        if not match:
            return ""
        host, path = match.group(1), match.group(2)
    path = path.strip("/").removesuffix(".git").strip("/")
    if not host or not path:
        return ""
    return f"{host}/{path}".lower()


def same_repository(repo_url: str, event_urls: Iterable[str]) -> bool:
    key = repository_key(repo_url)
    return bool(key) and key in {repository_key(u) for u in event_urls}


def explain_mismatch(workflow: Workflow, change: RefChange) -> str:
    """Why the change does not start the workflow, or "" when it does."""
    if change.kind == Kind.PUSH:
        if matching_branch_rule(change.branch, workflow.branch_rules):
            return ""
        return f"branch {change.branch} matches no branch rule of {workflow}"
    if change.kind == Kind.TAG:
        if matching_tag_pattern(change.tag, workflow.tag_patterns):
            return ""
        return f"tag {change.tag} matches no tag pattern of {workflow}"
    if change.kind == Kind.PULL_REQUEST:
        if workflow.pipeline_type == PipelineType.CI and workflow.build_pull_requests:
            return ""
        return f"{workflow} does not build pull requests"
    if change.kind == Kind.DELETE:
        return f"{change.name} was deleted"
    return "nothing to build"
