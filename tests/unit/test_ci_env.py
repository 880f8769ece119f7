"""CI detection: each CI's variables → branch / commit / pull request / git tag / source."""

from __future__ import annotations

import subprocess

import pytest

from autodock.ci.env import BuildContext, clean_url, detect, from_git, resolve
from tests.support.ci_env import ci_free_env, git_checkout

SHA = "0123456789abcdef0123456789abcdef01234567"

CASES = [
    # (id, env, expected: provider, branch, pull_request, git_tag, source)
    (
        "travis-push",
        {
            "TRAVIS": "true",
            "TRAVIS_BRANCH": "develop",
            "TRAVIS_PULL_REQUEST": "false",
            "TRAVIS_COMMIT": SHA,
            "TRAVIS_REPO_SLUG": "jincort/auth",
        },
        ("travis", "develop", None, None, "https://github.com/jincort/auth"),
    ),
    (
        # TRAVIS_BRANCH is the PR's target: the old snippet pushed this as `stage`
        "travis-pr-uses-source-branch",
        {
            "TRAVIS": "true",
            "TRAVIS_BRANCH": "develop",
            "TRAVIS_PULL_REQUEST": "42",
            "TRAVIS_PULL_REQUEST_BRANCH": "feature/login",
            "TRAVIS_COMMIT": SHA,
        },
        ("travis", "feature/login", "42", None, None),
    ),
    (
        "travis-tag",
        {
            "TRAVIS": "true",
            "TRAVIS_BRANCH": "v1.2.0",
            "TRAVIS_TAG": "v1.2.0",
            "TRAVIS_PULL_REQUEST": "false",
            "TRAVIS_COMMIT": SHA,
        },
        ("travis", None, None, "v1.2.0", None),
    ),
    (
        "github-push",
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REF": "refs/heads/master",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_SHA": SHA,
            "GITHUB_REPOSITORY": "jincort/auth",
            "GITHUB_SERVER_URL": "https://github.com",
        },
        ("github", "master", None, None, "https://github.com/jincort/auth"),
    ),
    (
        "github-branch-with-slash",
        {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/release/2.0", "GITHUB_SHA": SHA},
        ("github", "release/2.0", None, None, None),
    ),
    (
        "github-pr",
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REF": "refs/pull/7/merge",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_HEAD_REF": "fix/typo",
            "GITHUB_BASE_REF": "develop",
            "GITHUB_SHA": SHA,
        },
        ("github", "fix/typo", "7", None, None),
    ),
    (
        "github-tag",
        {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/tags/v3", "GITHUB_SHA": SHA},
        ("github", None, None, "v3", None),
    ),
    (
        "gitlab-branch",
        {
            "GITLAB_CI": "true",
            "CI": "true",
            "CI_COMMIT_BRANCH": "develop",
            "CI_COMMIT_REF_NAME": "develop",
            "CI_COMMIT_SHA": SHA,
            "CI_PROJECT_URL": "https://gitlab.com/jincort/auth",
            "CI_REPOSITORY_URL": "https://gitlab-ci-token:SECRET@gitlab.com/jincort/auth.git",
        },
        ("gitlab", "develop", None, None, "https://gitlab.com/jincort/auth"),
    ),
    (
        "gitlab-merge-request",
        {
            "GITLAB_CI": "true",
            "CI_MERGE_REQUEST_IID": "5",
            "CI_COMMIT_REF_NAME": "feat",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feat",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "master",
            "CI_COMMIT_SHA": SHA,
        },
        ("gitlab", "feat", "5", None, None),
    ),
    (
        "gitlab-tag",
        {
            "GITLAB_CI": "true",
            "CI_COMMIT_TAG": "v1",
            "CI_COMMIT_REF_NAME": "v1",
            "CI_COMMIT_SHA": SHA,
        },
        ("gitlab", None, None, "v1", None),
    ),
    (
        "drone-push",
        {
            "DRONE": "true",
            "DRONE_BUILD_EVENT": "push",
            "DRONE_BRANCH": "develop",
            "DRONE_COMMIT_SHA": SHA,
            "DRONE_REPO_LINK": "https://github.com/jincort/auth",
        },
        ("drone", "develop", None, None, "https://github.com/jincort/auth"),
    ),
    (
        "drone-pr-uses-source-branch",
        {
            "DRONE": "true",
            "DRONE_BUILD_EVENT": "pull_request",
            "DRONE_BRANCH": "develop",
            "DRONE_SOURCE_BRANCH": "feature/x",
            "DRONE_PULL_REQUEST": "9",
            "DRONE_COMMIT_SHA": SHA,
        },
        ("drone", "feature/x", "9", None, None),
    ),
    (
        "drone-tag",
        {"DRONE": "true", "DRONE_BUILD_EVENT": "tag", "DRONE_TAG": "v2", "DRONE_COMMIT": SHA},
        ("drone", None, None, "v2", None),
    ),
    (
        "codeship-basic",
        {
            "CI": "true",
            "CI_NAME": "codeship",
            "CI_BRANCH": "develop",
            "CI_COMMIT_ID": SHA,
            "CI_PULL_REQUEST": "false",
        },
        ("codeship", "develop", None, None, None),
    ),
    (
        "codeship-pro-pr",
        {
            "CI": "true",
            "CI_NAME": "CodeShip",
            "CI_BRANCH": "feat",
            "CI_COMMIT_ID": SHA,
            "CI_PR_NUMBER": "12",
            "CI_PULL_REQUEST": "https://github.com/o/r/pull/12",
        },
        ("codeship", "feat", "12", None, None),
    ),
    (
        "jenkins-multibranch",
        {
            "JENKINS_URL": "http://ci/",
            "BRANCH_NAME": "develop",
            "GIT_COMMIT": SHA,
            "GIT_URL": "git@github.com:jincort/auth.git",
        },
        ("jenkins", "develop", None, None, "https://github.com/jincort/auth"),
    ),
    (
        "jenkins-git-plugin-origin-prefix",
        {"JENKINS_URL": "http://ci/", "GIT_BRANCH": "origin/master", "GIT_COMMIT": SHA},
        ("jenkins", "master", None, None, None),
    ),
    (
        "jenkins-pr",
        {
            "JENKINS_URL": "http://ci/",
            "BRANCH_NAME": "PR-3",
            "CHANGE_ID": "3",
            "CHANGE_BRANCH": "feat",
            "CHANGE_TARGET": "develop",
            "GIT_COMMIT": SHA,
        },
        ("jenkins", "feat", "3", None, None),
    ),
    (
        "jenkins-tag",
        {"JENKINS_URL": "http://ci/", "BRANCH_NAME": "v1", "TAG_NAME": "v1", "GIT_COMMIT": SHA},
        ("jenkins", None, None, "v1", None),
    ),
    (
        # a push to a branch with an open PR is still a branch build on CircleCI
        "circleci-branch-with-open-pr",
        {
            "CIRCLECI": "true",
            "CIRCLE_BRANCH": "develop",
            "CIRCLE_SHA1": SHA,
            "CIRCLE_PULL_REQUEST": "https://github.com/o/r/pull/4",
            "CIRCLE_REPOSITORY_URL": "git@github.com:o/r.git",
        },
        ("circleci", "develop", None, None, "https://github.com/o/r"),
    ),
    (
        "circleci-fork-pr",
        {
            "CIRCLECI": "true",
            "CIRCLE_BRANCH": "pull/4",
            "CIRCLE_SHA1": SHA,
            "CIRCLE_PR_NUMBER": "4",
        },
        ("circleci", "pull/4", "4", None, None),
    ),
    (
        "circleci-tag",
        {"CIRCLECI": "true", "CIRCLE_TAG": "v5", "CIRCLE_SHA1": SHA},
        ("circleci", None, None, "v5", None),
    ),
    (
        "bitbucket-branch",
        {
            "BITBUCKET_BUILD_NUMBER": "17",
            "BITBUCKET_BRANCH": "master",
            "BITBUCKET_COMMIT": SHA,
            "BITBUCKET_GIT_HTTP_ORIGIN": "http://bitbucket.org/jincort/auth",
        },
        ("bitbucket", "master", None, None, "http://bitbucket.org/jincort/auth"),
    ),
    (
        "bitbucket-pr",
        {
            "BITBUCKET_BUILD_NUMBER": "18",
            "BITBUCKET_BRANCH": "feat",
            "BITBUCKET_PR_ID": "8",
            "BITBUCKET_PR_DESTINATION_BRANCH": "develop",
            "BITBUCKET_COMMIT": SHA,
        },
        ("bitbucket", "feat", "8", None, None),
    ),
]


@pytest.mark.parametrize(("env", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_detect(env: dict[str, str], expected: tuple) -> None:
    ctx = detect(env)
    assert ctx is not None
    assert (ctx.provider, ctx.branch, ctx.pull_request, ctx.git_tag, ctx.source) == expected
    assert ctx.sha == SHA
    assert ctx.short_sha == SHA[:7]


def test_detect_outside_ci() -> None:
    assert detect({"HOME": "/root", "CI": "true"}) is None


def test_detect_drops_a_commit_that_is_not_a_sha() -> None:
    ctx = detect({"TRAVIS": "true", "TRAVIS_BRANCH": "x", "TRAVIS_COMMIT": "$(rm -rf /)"})
    assert ctx is not None and ctx.sha is None


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://github.com/o/r.git", "https://github.com/o/r"),
        ("git@github.com:o/r.git", "https://github.com/o/r"),
        ("ssh://git@gitlab.example.com:2222/o/r.git", "https://gitlab.example.com/o/r"),
        ("https://gitlab-ci-token:SECRET@gitlab.com/o/r.git", "https://gitlab.com/o/r"),
        ("https://user@bitbucket.org/o/r", "https://bitbucket.org/o/r"),
        ("https://git.example.com:8443/o/r", "https://git.example.com:8443/o/r"),
        ("", None),
        (None, None),
    ],
)
def test_clean_url(url: str | None, clean: str | None) -> None:
    assert clean_url(url) == clean


def _git(path, *args: str) -> None:
    subprocess.run(["git", "-C", str(path), *args], env=ci_free_env(), check=True)


def test_from_git_branch_detached_and_tag(tmp_path) -> None:
    sha = git_checkout(tmp_path, "develop", {"a": "1"})
    ctx = from_git(tmp_path)
    assert ctx == BuildContext(
        provider="git", branch="develop", sha=sha, source="https://git.example.com/team/app"
    )
    _git(tmp_path, "checkout", "-q", "--detach")
    assert from_git(tmp_path).branch is None
    _git(tmp_path, "tag", "v9")
    detached_at_tag = from_git(tmp_path)
    assert (detached_at_tag.branch, detached_at_tag.git_tag) == (None, "v9")


def test_from_git_outside_a_repository(tmp_path) -> None:
    assert from_git(tmp_path) == BuildContext(provider="git")


def test_resolve_fills_gaps_from_git_and_applies_overrides(tmp_path) -> None:
    sha = git_checkout(tmp_path, "whatever", {"a": "1"})
    codeship = {"CI_NAME": "codeship", "CI_BRANCH": "develop"}  # no commit, no source
    ctx = resolve(codeship, tmp_path)
    assert (ctx.provider, ctx.branch, ctx.sha) == ("codeship", "develop", sha)
    assert ctx.source == "https://git.example.com/team/app"
    pr = {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/pull/1/merge", "GITHUB_SHA": SHA}
    forced = resolve(pr, tmp_path, branch="master", sha="ABCDEF1")
    assert (forced.branch, forced.pull_request, forced.sha) == ("master", None, "abcdef1")
