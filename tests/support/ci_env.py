"""Helpers for `autodock ci` tests: an environment without any CI's variables, and git
checkouts to build from."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["CI_PREFIXES", "ci_free_env", "git_checkout"]

# variables that would make the CI detection see the CI these tests run in
CI_PREFIXES = (
    "GITHUB_",
    "GITLAB_",
    "CI_",
    "TRAVIS",
    "DRONE",
    "CIRCLE",
    "BITBUCKET_",
    "JENKINS_",
    "GIT_",
    "CHANGE_",
    "BRANCH_NAME",
    "TAG_NAME",
    "AUTODOCK_CI_",
    "DOCKER_USER",
    "DOCKER_PASS",
    "SOURCE_DATE_EPOCH",
)
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "ci test",
    "GIT_AUTHOR_EMAIL": "ci@example.invalid",
    "GIT_COMMITTER_NAME": "ci test",
    "GIT_COMMITTER_EMAIL": "ci@example.invalid",
}


def ci_free_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CI_PREFIXES)}
    env.update(GIT_IDENTITY)
    env.update(extra)
    return env


def git_checkout(path: Path, branch: str, files: dict[str, str]) -> str:
    """A repository at ``path`` on ``branch`` with ``files`` committed; returns the sha."""
    path.mkdir(parents=True, exist_ok=True)
    env = ci_free_env()

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(path), *args], env=env, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    git("init", "-q")
    git("checkout", "-q", "-b", branch)
    git("remote", "add", "origin", "https://token:x-secret@git.example.com/team/app.git")
    for name, text in files.items():
        (path / name).write_text(text)
    git("add", "-A")
    git("commit", "-q", "-m", "test commit")
    return git("rev-parse", "HEAD")
