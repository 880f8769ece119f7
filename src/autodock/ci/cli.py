"""``autodock ci``: one command for every CI instead of a copied shell snippet.

stdout carries only results (the tag; ``REF@DIGEST`` per pushed tag; the image ID), so
``TAG=$(autodock ci tag)`` works; progress and explanations go to stderr.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import docker

from ..exceptions import AutodockError, ConfigError
from ..reference import InvalidReference, parse_image
from .build import BuildError, BuildPlan, build_image, build_time, choose_dockerfile, oci_labels
from .env import BuildContext, resolve
from .push import Credentials, find_credentials, login, push_image, registry_of
from .settings import CONFIG_FILE, CiSettings, load_settings
from .tags import check_template, describe, render, template_for
from .templates import PROVIDER_FILES, render_ci_config, render_settings
from .wait import wait_cmd

__all__ = ["CiGroup", "Job", "ci"]


@dataclass(frozen=True)
class Job:
    """Everything decided before talking to the engine."""

    settings: CiSettings
    ctx: BuildContext
    tag: str
    why: str
    image: str | None
    extra_tags: list[str]

    @property
    def refs(self) -> list[str]:
        if self.image is None:
            raise ConfigError(f"no image name: pass --image or set `image:` in {CONFIG_FILE}")
        return [f"{self.image}:{t}" for t in [self.tag, *self.extra_tags]]


def _err(message: str) -> None:
    click.echo(message, err=True)


def _pairs(values: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    out = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected {what}, got {value!r}")
        out.append((key, val))
    return out


def _tag_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--config",
            "-c",
            "config_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help=f"CI settings [default ./{CONFIG_FILE}; env AUTODOCK_CI_CONFIG].",
        ),
        click.option(
            "--branch",
            envvar="AUTODOCK_CI_BRANCH",
            help="Build as this branch (not a PR) instead of the detected one.",
        ),
        click.option("--sha", envvar="AUTODOCK_CI_SHA", help="Commit instead of the detected one."),
        click.option(
            "--map",
            "mapping",
            multiple=True,
            metavar="BRANCH=TAG",
            help="Branch glob → tag; repeat; replaces the configured mapping.",
        ),
        click.option("--other", metavar="TEMPLATE", help="Tag for unmapped branches."),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), fn)


def _image_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--image", "-i", envvar="AUTODOCK_CI_IMAGE", help="[HOST/]ORG/APP, no tag."),
        click.option("--tag", "-t", "fixed_tag", help="Use this tag; skip the branch mapping."),
        click.option(
            "--extra-tag", multiple=True, metavar="TEMPLATE", help="Also tag this; e.g. {sha}."
        ),
        click.option("--dry-run", is_flag=True, help="Print what would happen; change nothing."),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), fn)


def _build_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--file", "-f", "dockerfile", help="Dockerfile to use (turns off Dockerfile.<tag>)."
        ),
        click.option(
            "--context", type=click.Path(file_okay=False, path_type=Path), help="Build context."
        ),
        click.option("--cache/--no-cache", default=None, help="Use the build cache [no]."),
        click.option("--build-arg", multiple=True, metavar="KEY=VALUE"),
        click.option("--label", multiple=True, metavar="KEY=VALUE", help="Extra image label."),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), fn)


def _push_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--username", "-u", help="Registry user [env DOCKER_USER]."),
        click.option(
            "--password-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="File holding the registry password (a CI/Docker secret).",
        ),
        click.option(
            "--password-stdin", is_flag=True, help="Read the registry password from stdin."
        ),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), fn)


def _job(
    config_path: Path | None,
    branch: str | None,
    sha: str | None,
    mapping: tuple[str, ...],
    other: str | None,
    image: str | None = None,
    fixed_tag: str | None = None,
    extra_tag: tuple[str, ...] = (),
) -> Job:
    settings = load_settings(config_path)
    rules = settings.tags.rules()
    if mapping:
        pairs = _pairs(mapping, "BRANCH=TAG")
        rules = replace(rules, branches=tuple((b, check_template(t)) for b, t in pairs))
    if other:
        rules = replace(rules, other=check_template(other))
    ctx = resolve(os.environ, Path.cwd(), branch=branch, sha=sha)
    if fixed_tag:
        tag, why = render(fixed_tag, ctx), "--tag"
    else:
        template, why = template_for(ctx, rules)
        tag = render(template, ctx)
    extras = [render(t, ctx) for t in [*rules.extra, *extra_tag]]
    image = image or settings.image
    if image is not None:
        try:
            ref = parse_image(image)
        except InvalidReference as exc:
            raise ConfigError(f"--image: {exc}") from None
        if ref.tag or ref.digest:
            raise ConfigError(f"--image takes no tag or digest (got {image!r})")
    return Job(settings, ctx, tag, why, image, [t for t in dict.fromkeys(extras) if t != tag])


def _plan(
    job: Job,
    dockerfile: str | None,
    context: Path | None,
    cache: bool | None,
    build_arg: tuple[str, ...],
    label: tuple[str, ...],
) -> BuildPlan:
    settings = job.settings
    ctx_dir = context or settings.context
    chosen = choose_dockerfile(
        ctx_dir, job.tag, dockerfile or settings.dockerfile, explicit=dockerfile is not None
    )
    labels = {
        **settings.labels,
        **oci_labels(job.ctx, job.tag, build_time()),
        **dict(_pairs(label, "KEY=VALUE")),
    }
    return BuildPlan(
        context=ctx_dir,
        dockerfile=chosen,
        refs=job.refs,
        labels=labels,
        build_args={**settings.build_args, **dict(_pairs(build_arg, "KEY=VALUE"))},
        no_cache=settings.no_cache if cache is None else not cache,
    )


def _credentials(
    job: Job, username: str | None, password_file: Path | None, password_stdin: bool
) -> Credentials | None:
    settings = job.settings
    return find_credentials(
        os.environ,
        registry_of(job.refs[0]),
        username=username or settings.username,
        username_env=settings.username_env,
        password_env=settings.password_env,
        password_file=password_file or settings.password_file,
        password_stdin=sys.stdin.read() if password_stdin else None,
    )


def _api() -> docker.APIClient:
    try:
        return docker.from_env(timeout=900).api
    except docker.errors.DockerException as exc:
        raise BuildError(f"cannot reach the Docker engine: {exc}") from None


def _show_build(plan: BuildPlan, job: Job) -> None:
    click.echo(f"build {plan.refs[0]}")
    click.echo(f"  from {_describe(job)}; tag {job.tag} ({job.why})")
    click.echo(f"  dockerfile {plan.dockerfile}, context {plan.context}")
    click.echo(f"  cache {'off' if plan.no_cache else 'on'}")
    for ref in plan.refs[1:]:
        click.echo(f"  also tag {ref}")
    for key, value in sorted(plan.labels.items()):
        click.echo(f"  label {key}={value}")
    for key in sorted(plan.build_args):
        click.echo(f"  build-arg {key}")


def _show_push(job: Job, creds: Credentials | None) -> None:
    if creds is not None:
        where = creds.registry or "Docker Hub"
        click.echo(f"log in to {where} as {creds.username} (password from {creds.origin})")
    for ref in job.refs:
        click.echo(f"push {ref}")


def _describe(job: Job) -> str:
    return describe(job.ctx)


def _do_build(api: docker.APIClient, plan: BuildPlan) -> str:
    _err(f"building {plan.refs[0]} from {plan.dockerfile}")
    image_id = build_image(api, plan, echo=_err)
    _err(f"built {image_id[:19]} as {', '.join(plan.refs)}")
    return image_id


def _login(api: docker.APIClient, creds: Credentials | None) -> None:
    if creds is not None:
        login(api, creds)
        _err(f"logged in to {creds.registry or 'Docker Hub'} as {creds.username}")


def _do_push(api: docker.APIClient, job: Job, creds: Credentials | None) -> None:
    for ref in job.refs:
        digest = push_image(api, ref, creds, echo=_err)
        click.echo(f"{ref}@{digest}")


# ---------------------------------------------------------------- commands


class CiGroup(click.Group):
    """Maps autodock's errors to exit codes itself, as the main group does, so that
    ``python -m autodock.ci.cli`` and in-process tests of ``ci`` behave like ``autodock ci``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AutodockError as exc:
            from ..cli import EXIT_CODES

            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(next(c for cls, c in EXIT_CODES.items() if isinstance(exc, cls)))


@click.group(cls=CiGroup, context_settings={"help_option_names": ["-h", "--help"]})
def ci() -> None:
    """Build and push images from CI: branch → tag, Dockerfile.<tag>, build, push.

    Works the same in GitHub Actions, GitLab CI, Travis, Drone, Codeship, Jenkins,
    CircleCI and Bitbucket (branch, commit and pull request come from their variables),
    and anywhere else through git. Settings: ./.autodock-ci.yml (see docs/ci.md).
    """


@ci.command("tag")
@_tag_options
@click.option("--verbose", "-v", is_flag=True, help="Explain the choice on stderr.")
def tag_cmd(
    config_path: Path | None,
    branch: str | None,
    sha: str | None,
    mapping: tuple[str, ...],
    other: str | None,
    verbose: bool,
) -> None:
    """Print the image tag for the current build (e.g. TAG=$(autodock ci tag))."""
    job = _job(config_path, branch, sha, mapping, other)
    if verbose:
        _err(f"{_describe(job)} → {job.tag} ({job.why})")
    click.echo(job.tag)


@ci.command("build")
@_tag_options
@_image_options
@_build_options
def build_cmd(
    config_path: Path | None,
    branch: str | None,
    sha: str | None,
    mapping: tuple[str, ...],
    other: str | None,
    image: str | None,
    fixed_tag: str | None,
    extra_tag: tuple[str, ...],
    dry_run: bool,
    dockerfile: str | None,
    context: Path | None,
    cache: bool | None,
    build_arg: tuple[str, ...],
    label: tuple[str, ...],
) -> None:
    """Build the image (Dockerfile.<tag> if it exists, else Dockerfile) with OCI labels."""
    job = _job(config_path, branch, sha, mapping, other, image, fixed_tag, extra_tag)
    plan = _plan(job, dockerfile, context, cache, build_arg, label)
    if dry_run:
        _show_build(plan, job)
        return
    click.echo(_do_build(_api(), plan))


@ci.command("push")
@_tag_options
@_image_options
@_push_options
def push_cmd(
    config_path: Path | None,
    branch: str | None,
    sha: str | None,
    mapping: tuple[str, ...],
    other: str | None,
    image: str | None,
    fixed_tag: str | None,
    extra_tag: tuple[str, ...],
    dry_run: bool,
    username: str | None,
    password_file: Path | None,
    password_stdin: bool,
) -> None:
    """Log in (from env or a secret file) and push; print REF@DIGEST per tag."""
    job = _job(config_path, branch, sha, mapping, other, image, fixed_tag, extra_tag)
    creds = _credentials(job, username, password_file, password_stdin)
    if dry_run:
        _show_push(job, creds)
        return
    api = _api()
    _login(api, creds)
    _do_push(api, job, creds)


@ci.command("all")
@_tag_options
@_image_options
@_build_options
@_push_options
@click.option(
    "--push-pull-requests/--no-push-pull-requests",
    default=None,
    help="Push pull-request builds too [setting push_pull_requests; default: build only].",
)
def all_cmd(
    config_path: Path | None,
    branch: str | None,
    sha: str | None,
    mapping: tuple[str, ...],
    other: str | None,
    image: str | None,
    fixed_tag: str | None,
    extra_tag: tuple[str, ...],
    dry_run: bool,
    dockerfile: str | None,
    context: Path | None,
    cache: bool | None,
    build_arg: tuple[str, ...],
    label: tuple[str, ...],
    username: str | None,
    password_file: Path | None,
    password_stdin: bool,
    push_pull_requests: bool | None,
) -> None:
    """Tag, build and push: the whole CI step."""
    job = _job(config_path, branch, sha, mapping, other, image, fixed_tag, extra_tag)
    plan = _plan(job, dockerfile, context, cache, build_arg, label)
    push_prs = job.settings.push_pull_requests if push_pull_requests is None else push_pull_requests
    skip_push = job.ctx.is_pull_request and not push_prs
    creds = None if skip_push else _credentials(job, username, password_file, password_stdin)
    if dry_run:
        _show_build(plan, job)
        if skip_push:
            click.echo(f"no push: pull request {job.ctx.pull_request} (see --push-pull-requests)")
        else:
            _show_push(job, creds)
        return
    api = _api()
    _login(api, creds)  # a wrong password should fail before a long build
    _do_build(api, plan)
    if skip_push:
        _err(f"pull request {job.ctx.pull_request}: built, not pushed (see --push-pull-requests)")
        return
    _do_push(api, job, creds)


@ci.command("init")
@click.option(
    "--provider", "-p", required=True, type=click.Choice(sorted(PROVIDER_FILES)), help="Which CI."
)
@click.option("--image", "-i", help=f"Image name for a new {CONFIG_FILE} [default org/app].")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Repository root [default .].",
)
def init_cmd(provider: str, image: str | None, force: bool, directory: Path) -> None:
    """Write a CI config that runs `autodock ci all` (and .autodock-ci.yml if missing)."""
    rel, text = render_ci_config(provider)
    target = directory / rel
    if target.exists() and not force:
        raise ConfigError(f"{target} exists; use --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    click.echo(f"wrote {target}")
    settings = directory / CONFIG_FILE
    if not settings.exists() or (force and image):
        if image:
            try:
                parse_image(image)
            except InvalidReference as exc:
                raise ConfigError(f"--image: {exc}") from None
        settings.write_text(render_settings(image or "org/app"))
        click.echo(f"wrote {settings}" + ("" if image else " (set `image:` in it)"))


if __name__ == "__main__":  # pragma: no cover
    ci()


ci.add_command(wait_cmd)
