"""Registry login and push through the engine API.

The password comes from an environment variable, a file (a Docker/CI secret) or stdin;
never from a flag, so it never shows in ``ps`` or a CI's command echo. It goes to the
engine only in the login request and the push's ``X-Registry-Auth`` header, and is
scrubbed from any error message before that is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import docker

from ..exceptions import AutodockError, ConfigError
from ..reference import split_domain

__all__ = [
    "PASSWORD_ENVS",
    "USERNAME_ENVS",
    "Credentials",
    "PushError",
    "find_credentials",
    "login",
    "push_image",
    "registry_of",
]

USERNAME_ENVS = ("AUTODOCK_CI_USERNAME", "DOCKER_USER", "DOCKER_USERNAME")
PASSWORD_ENVS = ("AUTODOCK_CI_PASSWORD", "DOCKER_PASS", "DOCKER_PASSWORD")
# what `docker login` with no server talks to
DOCKER_HUB = "https://index.docker.io/v1/"


class PushError(AutodockError):
    """Login or push failed."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    registry: str | None  # None: Docker Hub
    origin: str = ""  # where the password came from, for messages (never the value)

    def auth_config(self) -> dict[str, str]:
        auth = {"username": self.username, "password": self.password}
        auth["serveraddress"] = self.registry or DOCKER_HUB
        return auth

    def scrub(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text


def registry_of(image: str) -> str | None:
    """The registry host of ``image``; None for Docker Hub."""
    domain, _ = split_domain(image)
    return None if domain in (None, "docker.io", "index.docker.io") else domain


def find_credentials(
    env: Mapping[str, str],
    registry: str | None,
    *,
    username: str | None = None,
    username_env: str | None = None,
    password_env: str | None = None,
    password_file: Path | None = None,
    password_stdin: str | None = None,
) -> Credentials | None:
    """Credentials from (in order) the arguments, the named variables, the usual variables.

    None when neither a user nor a password is given (push anonymously, or with the
    engine host's own stored login); ConfigError when only one of them is.
    """
    user = username or (env.get(username_env, "") if username_env else "")
    user_origin = "--username" if username else f"${username_env}"
    if not user:
        user_origin, user = next(((f"${n}", env[n]) for n in USERNAME_ENVS if env.get(n)), ("", ""))
    password, origin = _password(env, password_env, password_file, password_stdin)
    if not user and password is None:
        return None
    if not user:
        raise ConfigError(f"a registry password was given ({origin}) but no user name")
    if password is None:
        raise ConfigError(
            f"registry user {user!r} ({user_origin}) has no password: set "
            f"{' or '.join('$' + n for n in PASSWORD_ENVS)}, or use --password-file"
        )
    return Credentials(user.strip(), password, registry, origin)


def _password(
    env: Mapping[str, str],
    password_env: str | None,
    password_file: Path | None,
    password_stdin: str | None,
) -> tuple[str | None, str]:
    if password_stdin is not None:
        return password_stdin.rstrip("\r\n"), "stdin"
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\r\n"), str(password_file)
        except OSError as exc:
            raise ConfigError(
                f"cannot read password file {password_file}: {exc.strerror}"
            ) from None
    if password_env:
        if env.get(password_env):
            return env[password_env], f"${password_env}"
        raise ConfigError(f"password_env names ${password_env}, which is not set")
    for name in PASSWORD_ENVS:
        if env.get(name):
            return env[name], f"${name}"
    return None, ""


def login(api: docker.APIClient, creds: Credentials) -> None:
    """Check the credentials with the registry now, so a typo fails before the build."""
    try:
        api.login(
            username=creds.username,
            password=creds.password,
            registry=creds.registry or DOCKER_HUB,
            reauth=True,
        )
    except docker.errors.APIError as exc:
        reason = creds.scrub(str(exc.explanation or exc))
        raise PushError(
            f"login to {creds.registry or 'Docker Hub'} as {creds.username} failed: {reason}"
        ) from None


def push_image(
    api: docker.APIClient,
    ref: str,
    creds: Credentials | None,
    echo: Callable[[str], None] = print,
) -> str:
    """Push ``repo:tag`` and return the manifest digest the registry reported."""
    repo, _, tag = ref.rpartition(":")
    digest: str | None = None
    shown: set[tuple[str, str]] = set()
    try:
        stream = api.push(
            repo,
            tag=tag,
            stream=True,
            decode=True,
            auth_config=creds.auth_config() if creds else None,
        )
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail") or {}
                message = str(detail.get("message") or chunk.get("error"))
                raise PushError(f"push of {ref} failed: {_scrub(creds, message)}")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            status, layer = str(chunk.get("status") or ""), str(chunk.get("id") or "")
            # one line per layer and state, not one per progress tick
            if status and (layer, status) not in shown and not chunk.get("progressDetail"):
                shown.add((layer, status))
                echo(f"{layer}: {status}" if layer else status)
    except docker.errors.APIError as exc:
        reason = _scrub(creds, str(exc.explanation or exc))
        raise PushError(f"push of {ref} failed: {reason}") from None
    if digest is None:
        raise PushError(f"push of {ref} reported no digest")
    return digest


def _scrub(creds: Credentials | None, text: str) -> str:
    return creds.scrub(text) if creds else text
