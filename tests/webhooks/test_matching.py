"""The branch, tag and repository matching rules, as a table."""

from __future__ import annotations

import pytest

from integrations.webhooks.matching import (
    matching_branch_rule,
    matching_tag_pattern,
    repository_key,
    same_repository,
)

EXACT, WILDCARD = "exact", "wildcard"

BRANCHES = [
    # pattern, match, branch, matches?
    ("main", EXACT, "main", True),
    ("main", EXACT, "Main", False),
    ("main", EXACT, "main2", False),
    ("release/*", EXACT, "release/1.2", False),  # exact is exact, even with a *
    ("release/*", WILDCARD, "release/1.2", True),
    ("release/*", WILDCARD, "release/1.2/hotfix", False),  # * does not cross /
    ("release/*", WILDCARD, "release", False),
    ("release/*", WILDCARD, "release/", False),
    ("release/**", WILDCARD, "release/1.2", True),
    ("release/**", WILDCARD, "release/1.2/hotfix", True),  # ** does
    ("feature-*", WILDCARD, "feature-login", True),
    ("feature-*", WILDCARD, "feature-x/y", False),
    ("feature-*", WILDCARD, "feature", False),
    ("**", WILDCARD, "a/b/c", True),
    ("*", WILDCARD, "a/b", False),
    ("**/hotfix", WILDCARD, "hotfix", True),
    ("**/hotfix", WILDCARD, "team/a/hotfix", True),
    ("feat**", WILDCARD, "feat/x", False),  # ** inside a segment is *
    ("v?.x", WILDCARD, "v1.x", True),
    ("v?.x", WILDCARD, "v10.x", False),
    ("[a-c]-fix", WILDCARD, "b-fix", True),
    ("[!a-c]-fix", WILDCARD, "b-fix", False),
    ("{a,b}", WILDCARD, "a", False),  # no braces
    ("!main", WILDCARD, "dev", False),  # no negation
    ("[", WILDCARD, "[", True),  # an unclosed [ is a plain character, and does not raise
]


@pytest.mark.parametrize(("pattern", "match", "branch", "expected"), BRANCHES)
def test_branch_rules(pattern, match, branch, expected):
    rule = {"pattern": pattern, "match": match}
    assert (matching_branch_rule(branch, [rule]) == rule) is expected


def test_first_matching_rule_wins_and_junk_rules_are_skipped():
    rules = ["main", {"pattern": 3}, {"pattern": "m*", "match": WILDCARD}, {"pattern": "main"}]
    assert matching_branch_rule("main", rules) == rules[2]
    assert matching_branch_rule("main", None) is None


@pytest.mark.parametrize(
    ("pattern", "tag", "expected"),
    [
        ("v*", "v1.2.3", True),
        ("v*", "1.2.3", False),
        ("v1.2.3", "v1.2.3", True),
        ("v1.2.3", "v1.2.30", False),
        ("release/*", "release/1", True),
        ("release/*", "release/1/rc", False),
        ("**", "a/b", True),
    ],
)
def test_tag_patterns(pattern, tag, expected):
    assert (matching_tag_pattern(tag, [pattern]) == pattern) is expected


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://github.com/Octo-Org/Shop.git", "github.com/octo-org/shop"),
        ("https://github.com/octo-org/shop", "github.com/octo-org/shop"),
        ("https://user@github.com:443/octo-org/shop/", "github.com/octo-org/shop"),
        ("git@github.com:octo-org/shop.git", "github.com/octo-org/shop"),
        (
            "ssh://git@gitlab.example.org:2222/group/sub/shop.git",
            "gitlab.example.org/group/sub/shop",
        ),
        ("git://github.com/octo-org/shop.git", "github.com/octo-org/shop"),
        ("", ""),
        ("not a url", ""),
        ("https://github.com/", ""),
    ],
)
def test_repository_key(url, key):
    assert repository_key(url) == key


def test_same_repository():
    assert same_repository("git@github.com:octo-org/shop.git", ["https://github.com/octo-org/shop"])
    assert not same_repository(
        "https://github.com/octo-org/shop2.git", ["https://github.com/octo-org/shop"]
    )
    assert not same_repository("", [""])
