"""Branch → tag mapping and sanitising (pure)."""

from __future__ import annotations

import pytest

from autodock.ci.env import BuildContext
from autodock.ci.tags import TagRules, check_template, compute_tag, render, sanitize
from autodock.exceptions import ConfigError
from autodock.reference import is_valid_tag

SHA = "abcdef0123456789abcdef0123456789abcdef01"


def ctx(branch: str | None = None, **kw: str | None) -> BuildContext:
    return BuildContext(provider="test", branch=branch, sha=kw.pop("sha", SHA), **kw)


DEFAULT = TagRules()
STAGE_ONLY = TagRules(branches=(("stage", "stage"),))
GLOBS = TagRules(
    branches=(("release/*", "rc-{branch}"), ("main", "production"), ("*", "b-{branch}")),
    git_tag="{git_tag}",
    pull_request="pr-{pr}-{short_sha}",
)

CASES = [
    # the seed's mapping
    (DEFAULT, ctx("master"), "production"),
    (DEFAULT, ctx("develop"), "stage"),
    (DEFAULT, ctx("feature/x"), "dev-abcdef0"),
    (DEFAULT, ctx("Master"), "dev-abcdef0"),  # branch names are case-sensitive, as in git
    (DEFAULT, ctx(None), "dev-abcdef0"),  # detached HEAD
    (DEFAULT, ctx(None, git_tag="v1.0"), "dev-abcdef0"),  # git tags unmapped by default
    # pull requests never take the target's (deploying) tag, even from a mapped branch
    (DEFAULT, ctx("develop", pull_request="12"), "pr-12"),
    (DEFAULT, ctx("master", pull_request="unknown"), "dev-abcdef0"),
    # a single stage branch
    (STAGE_ONLY, ctx("stage"), "stage"),
    (STAGE_ONLY, ctx("develop"), "dev-abcdef0"),
    (STAGE_ONLY, ctx("master"), "dev-abcdef0"),
    # globs, first match wins, placeholders sanitised
    (GLOBS, ctx("release/2.0"), "rc-release-2.0"),
    (GLOBS, ctx("main"), "production"),
    (GLOBS, ctx("Feature/Ünïcode thing!"), "b-Feature-Unicode-thing"),
    (GLOBS, ctx(None, git_tag="v2.1.0"), "v2.1.0"),
    (GLOBS, ctx("x", pull_request="3"), "pr-3-abcdef0"),
]


@pytest.mark.parametrize(("rules", "build", "tag"), CASES)
def test_compute_tag(rules: TagRules, build: BuildContext, tag: str) -> None:
    assert compute_tag(build, rules) == tag


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("develop", "develop"),
        ("feature/JIRA-12_fix", "feature-JIRA-12_fix"),
        ("a//b\\c d", "a-b-c-d"),
        ("..hidden", "hidden"),
        ("-starts-with-dash", "starts-with-dash"),
        ("a..b...c", "a.b.c"),
        ("trailing.-", "trailing"),
        ("ünïcödé", "unicode"),
        ("日本", ""),
        ("x" * 300, "x" * 128),
        ("$(rm -rf /)", "rm-rf"),
    ],
)
def test_sanitize(raw: str, clean: str) -> None:
    assert sanitize(raw) == clean
    assert clean == "" or is_valid_tag(clean)


@pytest.mark.parametrize(
    "branch",
    ["a", "-x", "..", "x/" * 100, "😀", "feat/😀/x", "_under", ".dot", "a b\tc\nd", "A" * 129],
)
def test_any_branch_gives_a_valid_tag_or_a_clear_error(branch: str) -> None:
    rules = TagRules(branches=(("*", "{branch}"),))
    try:
        tag = compute_tag(ctx(branch), rules)
    except ConfigError as exc:
        assert "no valid tag" in str(exc) or "a Docker tag allows" in str(exc)
    else:
        assert is_valid_tag(tag) and len(tag) <= 128


def test_long_prefix_and_branch_are_clamped_to_128() -> None:
    tag = render("dev-{branch}-{sha}", ctx("b" * 200))
    assert len(tag) == 128 and is_valid_tag(tag)


def test_missing_value_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"needs \{branch\}.*no branch"):
        render("b-{branch}", ctx(None))
    with pytest.raises(ConfigError, match=r"needs \{short_sha\}"):
        compute_tag(ctx("feature", sha=None), DEFAULT)


@pytest.mark.parametrize("template", ["{nope}", "x-{sha.__class__}", "x{", "}x", "{}"])
def test_bad_templates_are_rejected(template: str) -> None:
    with pytest.raises(ConfigError):
        check_template(template)
