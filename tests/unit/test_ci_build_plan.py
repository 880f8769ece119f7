"""Dockerfile choice, OCI labels, settings and credentials: everything decided before the
engine is called."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from autodock.ci.build import build_time, choose_dockerfile, oci_labels
from autodock.ci.env import BuildContext
from autodock.ci.push import Credentials, find_credentials, registry_of
from autodock.ci.settings import load_settings
from autodock.exceptions import ConfigError


@pytest.mark.parametrize(
    ("files", "tag", "dockerfile", "explicit", "chosen"),
    [
        (["Dockerfile"], "stage", "Dockerfile", False, "Dockerfile"),
        (["Dockerfile", "Dockerfile.stage"], "stage", "Dockerfile", False, "Dockerfile.stage"),
        (["Dockerfile", "Dockerfile.stage"], "production", "Dockerfile", False, "Dockerfile"),
        (["Dockerfile.production"], "production", "Dockerfile", False, "Dockerfile.production"),
        (
            ["docker/app.df", "docker/app.df.stage"],
            "stage",
            "docker/app.df",
            False,
            "docker/app.df.stage",
        ),
        # --file names the file: no Dockerfile.<tag> lookup
        (["Dockerfile", "Dockerfile.stage"], "stage", "Dockerfile", True, "Dockerfile"),
        (
            ["Dockerfile", "Dockerfile.dev-abc1234"],
            "dev-abc1234",
            "Dockerfile",
            False,
            "Dockerfile.dev-abc1234",
        ),
    ],
)
def test_choose_dockerfile(
    tmp_path: Path, files: list[str], tag: str, dockerfile: str, explicit: bool, chosen: str
) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("FROM scratch\n")
    assert choose_dockerfile(tmp_path, tag, dockerfile, explicit) == tmp_path / chosen


def test_choose_dockerfile_missing(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile.stage").mkdir()  # a directory is not a Dockerfile
    with pytest.raises(ConfigError, match="no Dockerfile"):
        choose_dockerfile(tmp_path, "stage")


def test_oci_labels() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    full = BuildContext("git", "develop", "a" * 40, source="https://git.example.com/o/r")
    assert oci_labels(full, "stage", created) == {
        "org.opencontainers.image.created": "2026-01-02T03:04:05Z",
        "org.opencontainers.image.version": "stage",
        "org.opencontainers.image.revision": "a" * 40,
        "org.opencontainers.image.source": "https://git.example.com/o/r",
    }
    assert set(oci_labels(BuildContext("git"), "x", created)) == {
        "org.opencontainers.image.created",
        "org.opencontainers.image.version",
    }


def test_build_time_honours_source_date_epoch() -> None:
    assert build_time({"SOURCE_DATE_EPOCH": "0"}) == datetime(1970, 1, 1, tzinfo=UTC)
    assert build_time({}).tzinfo is UTC


def test_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "ci.yml"
    path.write_text(
        "image: 127.0.0.1:5000/team/app\n"
        "tags:\n  branches: {stage: stage}\n  extra: ['{sha}']\n"
        "no_cache: false\nbuild_args: {A: b}\n"
    )
    settings = load_settings(path)
    rules = settings.tags.rules()
    assert rules.branches == (("stage", "stage"),)
    assert rules.extra == ("{sha}",)
    assert (settings.image, settings.no_cache, settings.build_args) == (
        "127.0.0.1:5000/team/app",
        False,
        {"A": "b"},
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("image: Team/App\n", "image"),
        ("image: team/app:latest\n", "without a tag"),
        ("tags: {other: 'x-{nope}'}\n", "unknown placeholder"),
        ("password: hunter2\n", "password"),  # secrets do not belong in the repository
        ("- a list\n", "mapping"),
    ],
)
def test_settings_file_errors(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "ci.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        load_settings(path)


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("jincort/auth", None),
        ("docker.io/jincort/auth", None),
        ("127.0.0.1:5000/jincort/auth", "127.0.0.1:5000"),
        ("registry.example.com/auth", "registry.example.com"),
    ],
)
def test_registry_of(image: str, registry: str | None) -> None:
    assert registry_of(image) == registry


def test_credentials_sources(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text("from-file\n")
    env = {"DOCKER_USER": "bob", "DOCKER_PASS": "from-env"}
    assert find_credentials({}, None) is None
    creds = find_credentials(env, "r:5000")
    assert creds == Credentials("bob", "from-env", "r:5000", "$DOCKER_PASS")
    assert find_credentials(env, None, password_file=secret).password == "from-file"
    assert find_credentials(env, None, password_stdin="typed\n").password == "typed"
    named = find_credentials(
        {"MY_U": "alice", "MY_P": "p"}, None, username_env="MY_U", password_env="MY_P"
    )
    assert (named.username, named.password, named.origin) == ("alice", "p", "$MY_P")


def test_credentials_never_show_the_password() -> None:
    creds = find_credentials({"DOCKER_USER": "bob", "DOCKER_PASS": "hunter2"}, None)
    assert "hunter2" not in repr(creds)
    assert creds.scrub("denied for bob:hunter2") == "denied for bob:***"
    assert creds.auth_config()["serveraddress"] == "https://index.docker.io/v1/"


@pytest.mark.parametrize(
    ("env", "kw", "problem"),
    [
        ({"DOCKER_PASS": "x"}, {}, "no user name"),
        ({"DOCKER_USER": "bob"}, {}, "has no password"),
        ({"DOCKER_USER": "bob"}, {"password_env": "UNSET_VAR"}, "not set"),
    ],
)
def test_credentials_errors(env: dict[str, str], kw: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        find_credentials(env, None, **kw)
