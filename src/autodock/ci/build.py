"""Build the image: Dockerfile choice, OCI labels, and the engine's build API (no docker CLI)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker

from ..exceptions import AutodockError, ConfigError
from .env import BuildContext

__all__ = [
    "BuildError",
    "BuildPlan",
    "build_image",
    "build_time",
    "choose_dockerfile",
    "oci_labels",
]

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class BuildError(AutodockError):
    """The engine refused or failed the build."""


@dataclass(frozen=True)
class BuildPlan:
    """One build: ``refs[0]`` is built, the rest are extra names for the same image."""

    context: Path
    dockerfile: Path
    refs: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = True


def choose_dockerfile(
    context: Path, tag: str, dockerfile: str = "Dockerfile", explicit: bool = False
) -> Path:
    """``Dockerfile.<tag>`` when it exists, else ``Dockerfile`` (both relative to context).

    ``explicit`` (the user named the file with --file) turns the choice off.
    """
    base = Path(dockerfile)
    if not base.is_absolute():
        base = context / base
    if not explicit:
        special = base.with_name(f"{base.name}.{tag}")
        if special.is_file():
            return special
    if not base.is_file():
        raise ConfigError(f"no Dockerfile: {base} does not exist")
    return base


def build_time(env: Mapping[str, str] | None = None) -> datetime:
    """Now, or $SOURCE_DATE_EPOCH for reproducible builds."""
    epoch = (env if env is not None else os.environ).get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC).replace(microsecond=0)


def oci_labels(ctx: BuildContext, version: str, created: datetime) -> dict[str, str]:
    """The ``org.opencontainers.image.*`` labels autodock sets; unknown values are left out."""
    labels = {
        "org.opencontainers.image.created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.version": version,
    }
    if ctx.sha:
        labels["org.opencontainers.image.revision"] = ctx.sha
    if ctx.source:
        labels["org.opencontainers.image.source"] = ctx.source
    return labels


def _build_args_for(plan: BuildPlan) -> dict[str, Any]:
    try:
        dockerfile = str(plan.dockerfile.resolve().relative_to(plan.context.resolve()))
    except ValueError:
        dockerfile = str(plan.dockerfile.resolve())  # docker-py ships it into the context
    return {
        "path": str(plan.context),
        "dockerfile": dockerfile,
        "tag": plan.refs[0],
        "nocache": plan.no_cache,
        "rm": True,
        "forcerm": True,
        "labels": plan.labels,
        "buildargs": plan.build_args,
        "decode": True,
    }


def build_image(api: docker.APIClient, plan: BuildPlan, echo: Callable[[str], None] = print) -> str:
    """Build, tag with every ref, and return the image ID. Progress lines go to ``echo``."""
    image_id: str | None = None
    try:
        for chunk in api.build(**_build_args_for(plan)):
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail") or {}
                message = detail.get("message") or chunk.get("error") or "unknown error"
                raise BuildError(f"build failed: {_ANSI_RE.sub('', str(message)).strip()}")
            if "stream" in chunk:
                for line in _ANSI_RE.sub("", str(chunk["stream"])).splitlines():
                    if line.strip():
                        echo(line.rstrip())
            elif "status" in chunk:
                echo(str(chunk["status"]))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except docker.errors.APIError as exc:
        raise BuildError(f"build failed: {exc.explanation or exc}") from None
    except docker.errors.DockerException as exc:
        raise BuildError(f"cannot reach the Docker engine: {exc}") from None
    if image_id is None:
        # engines before 1.30 send no aux ID; the tag just built names the image
        image_id = str(api.inspect_image(plan.refs[0])["Id"])
    for ref in plan.refs[1:]:
        repo, _, tag = ref.rpartition(":")
        api.tag(image_id, repo, tag)
    return image_id
