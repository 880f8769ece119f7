"""`autodock ci` in-process (click's CliRunner): tag output, dry runs, init, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from autodock.ci.cli import ci
from autodock.ci.settings import load_settings
from autodock.ci.templates import PROVIDER_FILES
from tests.support.ci_env import CI_PREFIXES, git_checkout

PASSWORD = "hunter2-not-for-logs"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A git checkout on `develop` as the cwd, with no CI variables around."""
    for name in list(os.environ):
        if name.startswith(CI_PREFIXES):
            monkeypatch.delenv(name)
    sha = git_checkout(
        tmp_path / "app",
        "develop",
        {"Dockerfile": "FROM scratch\n", "Dockerfile.stage": "FROM scratch\nLABEL s=1\n"},
    )
    monkeypatch.chdir(tmp_path / "app")
    return tmp_path / "app", sha


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    return CliRunner().invoke(ci, list(args), env=env, input=input, catch_exceptions=False)


def test_tag_from_git(repo: tuple[Path, str]) -> None:
    result = run("tag")
    assert (result.exit_code, result.stdout) == (0, "stage\n")


def test_tag_verbose_explains_on_stderr_only(repo: tuple[Path, str]) -> None:
    result = run("tag", "-v")
    assert result.stdout == "stage\n"
    assert "branch develop matches 'develop'" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "tag"),
    [
        ([], {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/master"}, "production"),
        (
            [],
            {
                "TRAVIS": "true",
                "TRAVIS_BRANCH": "develop",
                "TRAVIS_PULL_REQUEST": "4",
                "TRAVIS_PULL_REQUEST_BRANCH": "feat",
            },
            "pr-4",
        ),
        (["--branch", "master"], {}, "production"),
        (["--branch", "feature/Foo Bar"], {}, "dev-{short}"),
        (["--map", "stage=stage"], {}, "dev-{short}"),
        (["--map", "develop=qa", "--map", "*=b-{branch}"], {}, "qa"),
        (["--branch", "x/y", "--map", "*=b-{branch}"], {}, "b-x-y"),
        (["--other", "snap-{sha}", "--branch", "feat"], {}, "snap-{sha}"),
        (["--sha", "1234567890abcdef", "--branch", "feat"], {}, "dev-1234567"),
    ],
)
def test_tag_cases(repo: tuple[Path, str], args: list[str], env: dict, tag: str) -> None:
    _, sha = repo
    result = run("tag", *args, env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == tag.format(short=sha[:7], sha=sha)


def test_tag_from_settings_file(repo: tuple[Path, str]) -> None:
    path, sha = repo
    (path / ".autodock-ci.yml").write_text("tags:\n  branches: {stage: stage}\n")
    assert run("tag").stdout.strip() == f"dev-{sha[:7]}"
    assert run("tag", "--branch", "stage").stdout.strip() == "stage"


def test_dry_run_all_shows_plan_and_hides_password(repo: tuple[Path, str]) -> None:
    _, sha = repo
    env = {"DOCKER_USER": "bob", "DOCKER_PASS": PASSWORD}
    result = run(
        "all", "--dry-run", "-i", "127.0.0.1:5000/team/app", "--extra-tag", "{sha}", env=env
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert PASSWORD not in out
    assert "dockerfile Dockerfile.stage" in out.replace(str(repo[0]) + "/", "")
    assert "cache off" in out
    assert f"label org.opencontainers.image.revision={sha}" in out
    assert "label org.opencontainers.image.source=https://git.example.com/team/app" in out
    assert "log in to 127.0.0.1:5000 as bob (password from $DOCKER_PASS)" in out
    assert "push 127.0.0.1:5000/team/app:stage\n" in out
    assert f"push 127.0.0.1:5000/team/app:{sha}\n" in out


def test_dry_run_pull_request_builds_without_pushing(repo: tuple[Path, str]) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/pull/9/merge", "GITHUB_HEAD_REF": "f"}
    result = run("all", "--dry-run", "-i", "team/app", env=env)
    assert result.exit_code == 0, result.output
    assert "build team/app:pr-9" in result.output
    assert "no push: pull request 9" in result.output
    pushed = run("all", "--dry-run", "-i", "team/app", "--push-pull-requests", env=env)
    assert "push team/app:pr-9" in pushed.output


def test_password_from_stdin_and_file(repo: tuple[Path, str], tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD + "\n")
    by_file = run("push", "--dry-run", "-i", "team/app", "-u", "bob", "--password-file", secret)
    assert f"password from {secret}" in by_file.output and PASSWORD not in by_file.output
    by_stdin = run(
        "push",
        "--dry-run",
        "-i",
        "team/app",
        "-u",
        "bob",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert "password from stdin" in by_stdin.output and PASSWORD not in by_stdin.output


def test_there_is_no_password_flag(repo: tuple[Path, str]) -> None:
    result = CliRunner().invoke(ci, ["push", "-i", "team/app", "--password", PASSWORD])
    assert result.exit_code == 2 and "No such option" in result.output


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["build", "--dry-run"], {}, 3, "no image name"),
        (["build", "--dry-run", "-i", "team/app:latest"], {}, 3, "no tag or digest"),
        (["build", "--dry-run", "-i", "team/app", "-f", "Nope"], {}, 3, "does not exist"),
        (["push", "--dry-run", "-i", "team/app"], {"DOCKER_USER": "bob"}, 3, "no password"),
        (["tag", "--map", "develop"], {}, 2, "BRANCH=TAG"),
        (["tag", "--map", "develop={oops}"], {}, 3, "unknown placeholder"),
        (["tag", "-c", "missing.yml"], {}, 3, "cannot read"),
    ],
)
def test_errors(repo, args: list[str], env: dict, code: int, message: str) -> None:
    result = CliRunner().invoke(ci, args, env=env)
    assert result.exit_code == code, result.output
    assert message in result.output


@pytest.mark.parametrize("provider", sorted(PROVIDER_FILES))
def test_init(tmp_path: Path, provider: str) -> None:
    result = run("init", "--provider", provider, "--dir", str(tmp_path), "-i", "team/app")
    assert result.exit_code == 0, result.output
    written = tmp_path / PROVIDER_FILES[provider]
    config = yaml.safe_load(written.read_text())
    assert isinstance(config, dict)
    assert "autodock ci all" in written.read_text()
    assert "DOCKER_PASS" in written.read_text() or "docker_pass" in written.read_text()
    assert load_settings(tmp_path / ".autodock-ci.yml").image == "team/app"
    again = CliRunner().invoke(ci, ["init", "-p", provider, "--dir", str(tmp_path)])
    assert again.exit_code == 3 and "--force" in again.output
    forced = run("init", "-p", provider, "--dir", str(tmp_path), "--force")
    assert forced.exit_code == 0


def test_init_github_workflow_shape(tmp_path: Path) -> None:
    run("init", "-p", "github", "--dir", str(tmp_path))
    flow = yaml.safe_load((tmp_path / ".github/workflows/autodock.yml").read_text())
    steps = flow["jobs"]["image"]["steps"]
    assert steps[-1]["run"] == "autodock ci all"
    assert steps[-1]["env"]["DOCKER_PASS"] == "${{ secrets.DOCKER_PASS }}"
    assert "pull_request" in flow[True]  # YAML 1.1 reads the key `on` as True


def test_main_cli_reaches_ci(repo: tuple[Path, str]) -> None:
    from autodock.cli import main

    result = CliRunner().invoke(main, ["ci", "tag"])
    assert (result.exit_code, result.stdout) == (0, "stage\n")
