from __future__ import annotations

import pytest

from tests.webhooks.helpers import (
    BITBUCKET_REPO,
    GITHUB_REPO,
    GITLAB_REPO,
    Hook,
    make_hook,
    make_workflow,
)


@pytest.fixture
def github_hook(project, registry) -> Hook:
    return make_hook(make_workflow(project, "shop", GITHUB_REPO, pull_requests=True))


@pytest.fixture
def gitlab_hook(project, registry) -> Hook:
    return make_hook(make_workflow(project, "shop-gl", GITLAB_REPO, pull_requests=True))


@pytest.fixture
def bitbucket_hook(project, registry) -> Hook:
    return make_hook(make_workflow(project, "shop-bb", BITBUCKET_REPO, pull_requests=True))


@pytest.fixture
def hooks(github_hook, gitlab_hook, bitbucket_hook) -> dict[str, Hook]:
    return {"github": github_hook, "gitlab": gitlab_hook, "bitbucket": bitbucket_hook}
