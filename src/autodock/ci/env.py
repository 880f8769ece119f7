"""Which CI is running, and what it builds: branch, commit, pull request, git tag, source URL.

``detect`` is pure (an environment mapping in, a ``BuildContext`` out); ``from_git`` asks
git in a checkout; ``resolve`` combines them (the CI's variables win, git fills gaps).

Pull requests: several CIs put the *target* branch in their branch variable during a
pull-request build (Travis's ``TRAVIS_BRANCH``, Drone's ``DRONE_BRANCH``), which is how
the old shell snippet pushed unmerged code as ``stage``. Here a pull-request build
carries its *source* branch and ``pull_request`` is set, so the tag mapping can keep
pull requests away from deploying tags.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = [
    "PROVIDERS",
    "BuildContext",
    "clean_url",
    "detect",
    "from_git",
    "resolve",
]

_SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")
_SCP_RE = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")


@dataclass(frozen=True)
class BuildContext:
    """What a CI job builds. ``branch`` is None for detached HEADs and git-tag builds."""

    provider: str
    branch: str | None = None
    sha: str | None = None
    pull_request: str | None = None  # the PR/MR number (or "unknown")
    git_tag: str | None = None
    source: str | None = None

    @property
    def short_sha(self) -> str | None:
        return self.sha[:7] if self.sha else None

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None


def _get(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _pr_number(value: str | None) -> str | None:
    """A PR id from a number or a URL ending in one; None for CIs' "false"/"0" markers."""
    if value is None or value.lower() in ("false", "0", "null", "none"):
        return None
    match = re.search(r"(\d+)/?$", value)
    return match.group(1) if match else "unknown"


def _strip_ref(ref: str | None) -> str | None:
    if ref is None:
        return None
    for prefix in ("refs/heads/", "refs/remotes/origin/", "origin/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :] or None
    return ref


def _travis(env: Mapping[str, str]) -> BuildContext:
    pr = _pr_number(_get(env, "TRAVIS_PULL_REQUEST"))
    tag = _get(env, "TRAVIS_TAG")
    # on a tag build TRAVIS_BRANCH holds the tag name; in a PR it holds the target branch
    branch = _get(env, "TRAVIS_PULL_REQUEST_BRANCH") if pr else _get(env, "TRAVIS_BRANCH")
    slug = _get(env, "TRAVIS_REPO_SLUG")
    return BuildContext(
        provider="travis",
        branch=None if tag else branch,
        sha=_get(env, "TRAVIS_COMMIT"),
        pull_request=pr,
        git_tag=tag,
        source=f"https://github.com/{slug}" if slug else None,
    )


def _github(env: Mapping[str, str]) -> BuildContext:
    ref = _get(env, "GITHUB_REF") or ""
    event = _get(env, "GITHUB_EVENT_NAME") or ""
    branch = tag = pr = None
    if event.startswith("pull_request") or ref.startswith("refs/pull/"):
        match = re.match(r"refs/pull/(\d+)/", ref)
        pr = match.group(1) if match else "unknown"
        branch = _get(env, "GITHUB_HEAD_REF")
    elif ref.startswith("refs/tags/"):
        tag = ref[len("refs/tags/") :]
    elif ref.startswith("refs/heads/"):
        branch = ref[len("refs/heads/") :]
    repo = _get(env, "GITHUB_REPOSITORY")
    server = _get(env, "GITHUB_SERVER_URL") or "https://github.com"
    return BuildContext(
        provider="github",
        branch=branch,
        sha=_get(env, "GITHUB_SHA"),
        pull_request=pr,
        git_tag=tag,
        source=f"{server}/{repo}" if repo else None,
    )


def _gitlab(env: Mapping[str, str]) -> BuildContext:
    pr = _get(env, "CI_MERGE_REQUEST_IID", "CI_EXTERNAL_PULL_REQUEST_IID")
    tag = _get(env, "CI_COMMIT_TAG")
    if pr:
        branch = _get(
            env,
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
            "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME",
        )
    elif tag:
        branch = None
    else:
        branch = _get(env, "CI_COMMIT_BRANCH", "CI_COMMIT_REF_NAME")
    return BuildContext(
        provider="gitlab",
        branch=branch,
        sha=_get(env, "CI_COMMIT_SHA"),
        pull_request=pr,
        git_tag=tag,
        # never CI_REPOSITORY_URL: it embeds the job token
        source=_get(env, "CI_PROJECT_URL"),
    )


def _drone(env: Mapping[str, str]) -> BuildContext:
    event = _get(env, "DRONE_BUILD_EVENT") or ""
    pr = _pr_number(_get(env, "DRONE_PULL_REQUEST"))
    if event == "pull_request" and pr is None:
        pr = "unknown"
    tag = _get(env, "DRONE_TAG") if event in ("tag", "") else None
    if pr:
        branch = _get(env, "DRONE_SOURCE_BRANCH")
    elif tag:
        branch = None
    else:
        branch = _get(env, "DRONE_BRANCH", "DRONE_COMMIT_BRANCH")
    return BuildContext(
        provider="drone",
        branch=branch,
        sha=_get(env, "DRONE_COMMIT_SHA", "DRONE_COMMIT"),
        pull_request=pr,
        git_tag=tag,
        source=_get(env, "DRONE_REPO_LINK"),
    )


def _codeship(env: Mapping[str, str]) -> BuildContext:
    # Codeship Pro sets CI_PR_NUMBER ("0" outside PRs); Basic sets CI_PULL_REQUEST
    pr = _pr_number(_get(env, "CI_PR_NUMBER")) or _pr_number(_get(env, "CI_PULL_REQUEST"))
    return BuildContext(
        provider="codeship",
        branch=_get(env, "CI_BRANCH"),
        sha=_get(env, "CI_COMMIT_ID"),
        pull_request=pr,
        source=None,
    )


def _jenkins(env: Mapping[str, str]) -> BuildContext:
    pr = _get(env, "CHANGE_ID")
    tag = _get(env, "TAG_NAME")
    if pr:
        branch = _get(env, "CHANGE_BRANCH")
    elif tag:
        branch = None
    else:
        # BRANCH_NAME in multibranch pipelines; GIT_BRANCH (origin/x) from the git plugin
        branch = _strip_ref(_get(env, "BRANCH_NAME", "GIT_BRANCH"))
    return BuildContext(
        provider="jenkins",
        branch=branch,
        sha=_get(env, "GIT_COMMIT"),
        pull_request=pr,
        git_tag=tag,
        source=clean_url(_get(env, "GIT_URL")),
    )


def _circleci(env: Mapping[str, str]) -> BuildContext:
    # CIRCLE_PULL_REQUEST is also set on ordinary pushes to a branch that has an open PR,
    # and those builds are branch builds; only fork PRs (CIRCLE_PR_NUMBER) are PR builds.
    tag = _get(env, "CIRCLE_TAG")
    return BuildContext(
        provider="circleci",
        branch=None if tag else _get(env, "CIRCLE_BRANCH"),
        sha=_get(env, "CIRCLE_SHA1"),
        pull_request=_pr_number(_get(env, "CIRCLE_PR_NUMBER")),
        git_tag=tag,
        source=clean_url(_get(env, "CIRCLE_REPOSITORY_URL")),
    )


def _bitbucket(env: Mapping[str, str]) -> BuildContext:
    tag = _get(env, "BITBUCKET_TAG")
    return BuildContext(
        provider="bitbucket",
        branch=None if tag else _get(env, "BITBUCKET_BRANCH"),
        sha=_get(env, "BITBUCKET_COMMIT"),
        pull_request=_get(env, "BITBUCKET_PR_ID"),
        git_tag=tag,
        source=clean_url(_get(env, "BITBUCKET_GIT_HTTP_ORIGIN")),
    )


# (name, is-this-the-CI, read-it); checked in order, first match wins
PROVIDERS: list[
    tuple[str, Callable[[Mapping[str, str]], bool], Callable[[Mapping[str, str]], BuildContext]]
] = [
    ("github", lambda e: e.get("GITHUB_ACTIONS") == "true", _github),
    ("gitlab", lambda e: e.get("GITLAB_CI") == "true", _gitlab),
    ("travis", lambda e: e.get("TRAVIS") == "true", _travis),
    ("circleci", lambda e: e.get("CIRCLECI") == "true", _circleci),
    ("drone", lambda e: e.get("DRONE") == "true", _drone),
    ("bitbucket", lambda e: bool(e.get("BITBUCKET_BUILD_NUMBER")), _bitbucket),
    ("codeship", lambda e: e.get("CI_NAME", "").lower() == "codeship", _codeship),
    ("jenkins", lambda e: bool(e.get("JENKINS_URL") or e.get("JENKINS_HOME")), _jenkins),
]


def detect(env: Mapping[str, str]) -> BuildContext | None:
    """The build context from a CI's environment variables; None outside a known CI."""
    for _name, applies, read in PROVIDERS:
        if applies(env):
            ctx = read(env)
            sha = ctx.sha.lower() if ctx.sha else None
            return replace(ctx, sha=sha if sha and _SHA_RE.match(sha) else None)
    return None


def clean_url(url: str | None) -> str | None:
    """A repository URL fit for a label: no credentials, https for scp-style ssh, no .git."""
    if not url:
        return None
    scp = _SCP_RE.match(url)
    if scp and "://" not in url:
        url = f"https://{scp.group(1)}/{scp.group(2)}"
    elif url.startswith("ssh://"):
        # the ssh port means nothing over https
        url = re.sub(r"^ssh://(?:[^/@]*@)?([^/:]+)(?::\d+)?/", r"https://\1/", url)
    url = re.sub(r"^(\w[\w+.-]*://)[^/@]*@", r"\1", url)
    return url[:-4] if url.endswith(".git") else url


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def from_git(cwd: Path) -> BuildContext:
    """Ask git in ``cwd``. A detached HEAD has no branch (its git tag, if any, is kept)."""
    sha = _git(cwd, "rev-parse", "--verify", "-q", "HEAD")
    branch = _git(cwd, "symbolic-ref", "-q", "--short", "HEAD")
    tag = None
    if branch is None and sha:
        tag = _git(cwd, "describe", "--tags", "--exact-match", "HEAD")
    return BuildContext(
        provider="git",
        branch=branch,
        sha=sha,
        git_tag=tag,
        source=clean_url(_git(cwd, "config", "--get", "remote.origin.url")),
    )


def resolve(
    env: Mapping[str, str],
    cwd: Path,
    *,
    branch: str | None = None,
    sha: str | None = None,
) -> BuildContext:
    """The CI's view where there is one, git's for what it leaves out, then the overrides."""
    ctx = detect(env)
    if ctx is None or ctx.sha is None or ctx.source is None:
        git = from_git(cwd)
        if ctx is None:
            ctx = git
        else:
            ctx = replace(ctx, sha=ctx.sha or git.sha, source=ctx.source or git.source)
    if branch:
        ctx = replace(ctx, branch=branch, git_tag=None, pull_request=None)
    if sha:
        ctx = replace(ctx, sha=sha.lower())
    return ctx
