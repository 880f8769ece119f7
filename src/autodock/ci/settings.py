"""``.autodock-ci.yml``: the image, the branch → tag mapping, build and login settings.

Everything is optional and every field has a command-line flag that wins over it.
Passwords cannot be written in the file (it lives in the repository): only the name of
an environment variable or a file that holds one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..exceptions import ConfigError
from ..reference import InvalidReference, parse_image
from .tags import DEFAULT_BRANCHES, TagRules, check_template

__all__ = ["CONFIG_FILE", "CiSettings", "TagSettings", "load_settings"]

CONFIG_FILE = ".autodock-ci.yml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagSettings(_Model):
    branches: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_BRANCHES),
        description="branch glob → tag template, first match wins (replaces the defaults)",
    )
    other: str = "dev-{short_sha}"
    pull_request: str = "pr-{pr}"
    git_tag: str | None = None
    extra: list[str] = Field(default_factory=list, description="also push these tags")

    @field_validator("other", "pull_request", "git_tag")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        return _checked(v) if v is not None else v

    @field_validator("branches")
    @classmethod
    def _branches(cls, v: dict[str, str]) -> dict[str, str]:
        for template in v.values():
            _checked(str(template))
        return {str(k): str(t) for k, t in v.items()}

    @field_validator("extra")
    @classmethod
    def _extra(cls, v: list[str]) -> list[str]:
        return [_checked(t) for t in v]

    def rules(self) -> TagRules:
        return TagRules(
            branches=tuple(self.branches.items()),
            other=self.other,
            pull_request=self.pull_request,
            git_tag=self.git_tag,
            extra=tuple(self.extra),
        )


def _checked(template: str) -> str:
    try:
        return check_template(template)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


class CiSettings(_Model):
    image: str | None = Field(None, description="[host[:port]/]org/app, without a tag")
    context: Path = Path(".")
    dockerfile: str = Field("Dockerfile", description="Dockerfile.<tag> next to it wins")
    no_cache: bool = True
    build_args: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    tags: TagSettings = TagSettings()
    push_pull_requests: bool = Field(False, description="`ci all` pushes PR builds too")
    username: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    password_file: Path | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ref = parse_image(v)
        except InvalidReference as exc:
            raise ValueError(str(exc)) from None
        if ref.tag or ref.digest:
            raise ValueError(f"give the image without a tag or digest, got {v!r}")
        return v


def load_settings(path: Path | None) -> CiSettings:
    """Read ``path``, else $AUTODOCK_CI_CONFIG, else ./.autodock-ci.yml if it exists."""
    if path is None:
        env = os.environ.get("AUTODOCK_CI_CONFIG")
        if env:
            path = Path(env)
        elif Path(CONFIG_FILE).exists():
            path = Path(CONFIG_FILE)
        else:
            return CiSettings()
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return CiSettings.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[int | None, str]] = [
            (None, f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") for err in exc.errors()
        ]
        raise ConfigError(f"{path}: invalid CI settings", problems) from None
