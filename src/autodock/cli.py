"""The ``autodock`` command line. Exit codes: see ``EXIT_CODES``."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import Config, load_config
from .exceptions import AutodockError, ConfigError, DeployError, PayloadError, StoreError

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES: dict[type[BaseException], int] = {
    ConfigError: 3,
    StoreError: 4,
    PayloadError: 5,
    DeployError: 6,
    AutodockError: 1,
}
CONFIG_HELP = "Config file: autodock.yml or a legacy config.json [env AUTODOCK_CONFIG]."

# Sub-command groups live next to the code they drive; importing them lazily keeps
# `autodock --help` fast and lets each tool own its module.
LAZY_GROUPS = {
    "ci": ("autodock.ci.cli", "ci", "Build and push images from CI (branch → tag)."),
    "lab": ("autodock.lab.cli", "lab", "A local multi-node swarm + registry for trying things."),
    "proxy": ("autodock.proxy.cli", "proxy", "nginx proxy config rendered from service labels."),
    "db": ("autodock.db.cli", "db", "Clone PostgreSQL data from production to stage."),
    "parity": ("autodock.db.cli", "parity", "Compare stage with production: services and DBs."),
    "notify": ("autodock.notify.cli", "notify", "Notification channels: send a test message."),
    "service": ("autodock.lab.service_add", "service", "Add a service to stage in one step."),
}


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


class AutodockGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._available_lazy()))

    def _available_lazy(self) -> dict[str, tuple[str, str, str]]:
        return {name: spec for name, spec in LAZY_GROUPS.items() if _module_exists(spec[0])}

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self._available_lazy():
            module, attr, _ = LAZY_GROUPS[name]
            command = getattr(importlib.import_module(module), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AutodockError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            code = next(c for cls, c in EXIT_CODES.items() if isinstance(exc, cls))
            ctx.exit(code)


def _config_path(path: str | None) -> str | None:
    if path:
        return path
    env = os.environ.get("AUTODOCK_CONFIG")
    if env:
        return env
    return "autodock.yml" if Path("autodock.yml").exists() else None


def _load(path: str | None, **overrides: Any) -> Config:
    return load_config(_config_path(path), **overrides)


@click.group(cls=AutodockGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="autodock")
def main() -> None:
    """autodock: continuous delivery for Docker Swarm.

    Registries call autodock's webhook when an image is pushed; autodock records the
    push durably, matches it against rules, and updates the Swarm services (pinned by
    digest, waiting until they converge) or runs commands. Start with `autodock serve`.
    """


# ---------------------------------------------------------------- serve


@main.command()
@click.option("--config", "-c", "config_path", help=CONFIG_HELP)
@click.option("--listen", "-l", help="HOST:PORT to listen on [default 0.0.0.0:58732].")
@click.option("--db", help="SQLite file or postgresql:// URL [default DATA_DIR/autodock.db].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded store lives [env AUTODOCK_DATA_DIR].",
)
@click.option("--workers", type=click.IntRange(1, 64), help="Deploys run in parallel [2].")
@click.option(
    "--http-auth-user",
    envvar="AUTODOCK_HTTP_AUTH_USER",
    help="Basic-auth user for webhooks [env AUTODOCK_HTTP_AUTH_USER].",
)
@click.option(
    "--http-auth-pass",
    envvar="AUTODOCK_HTTP_AUTH_PASS",
    show_envvar=False,
    help="Basic-auth password [env AUTODOCK_HTTP_AUTH_PASS; prefer the env or a file].",
)
@click.option(
    "--http-auth-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="AUTODOCK_HTTP_AUTH_FILE",
    help="File holding USER:PASSWORD on one line (e.g. a Docker secret).",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Accept webhooks without credentials (only behind something that checks).",
)
@click.option("--docker-host", envvar="DOCKER_HOST", help="Docker engine URL [env DOCKER_HOST].")
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve HTTPS with this PEM certificate (chain) [needs --tls-key].",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The PEM private key of --tls-cert.",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log line format.")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def serve(
    config_path: str | None,
    listen: str | None,
    db: str | None,
    data_dir: Path | None,
    workers: int | None,
    http_auth_user: str | None,
    http_auth_pass: str | None,
    http_auth_file: Path | None,
    insecure_no_auth: bool,
    docker_host: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    log_format: str | None,
    log_level: str,
) -> None:
    """Run the webhook server and the deploy worker.

    Register http://USER:PASS@HOST:58732/autodock/v1/ as the Docker Hub webhook, or
    http://HOST:58732/hooks/registry as a Registry v2 notification endpoint.
    """
    from .logs import setup_logging
    from .server import serve as run_server

    auth: Any = None
    if insecure_no_auth:
        auth = "none"
    elif http_auth_file is not None:
        user, sep, password = http_auth_file.read_text().strip().partition(":")
        if not sep:
            raise ConfigError(f"{http_auth_file}: expected USER:PASSWORD on one line")
        from .intake.guard import is_bcrypt_hash

        if is_bcrypt_hash((password.splitlines() or [""])[0]):  # an htpasswd -B file: user:$2y$…
            auth = {"htpasswd": http_auth_file}
        else:
            auth = {"username": user, "password": password}
    elif http_auth_user or http_auth_pass:
        if not (http_auth_user and http_auth_pass):
            raise ConfigError("give both --http-auth-user and --http-auth-pass")
        auth = {"username": http_auth_user, "password": http_auth_pass}
    config = _load(
        config_path,
        listen=listen,
        db=db,
        data_dir=data_dir,
        workers=workers,
        auth=auth,
        docker_host=docker_host,
        log_format=log_format,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    setup_logging(config.log_format, log_level.upper())
    run_server(config)


# ---------------------------------------------------------------- config


@main.group()
def config() -> None:
    """Check configuration files."""


@config.command("check")
@click.argument("file", required=False)
@click.option(
    "--push",
    "push_ref",
    metavar="[HOST/]REPO:TAG[@DIGEST]",
    help="Dry run: show what a push of this image would do.",
)
@click.option("--no-docker", is_flag=True, help="Do not ask the engine for labelled services.")
def config_check(file: str | None, push_ref: str | None, no_docker: bool) -> None:
    """Validate FILE (default ./autodock.yml) and list what each rule targets."""
    from .planner import plan
    from .reference import InvalidReference, parse_image

    path = _config_path(file)
    if path is None:
        raise ConfigError("no config file given and ./autodock.yml does not exist")
    cfg = load_config(path)
    kind = "legacy config.json" if cfg.legacy else "YAML config"
    click.secho(f"{path}: valid {kind}, {len(cfg.rules)} rule(s)", fg="green")
    for rule in cfg.rules:
        click.echo(
            f"- {rule.display_name}: repo {', '.join(rule.repos)} tag {', '.join(rule.tags)}"
        )
        for action in rule.all_actions():
            if hasattr(action, "service"):
                click.echo(f"    service {action.service}")
            else:
                click.echo(f"    command {json.dumps(action.command)}")
    if cfg.discovery.labels:
        click.echo("- services labelled autodock.repo=… are deployed without a rule")
    if push_ref is None:
        return
    try:
        ref = parse_image(push_ref)
    except InvalidReference as exc:
        raise PayloadError(str(exc)) from None
    if not ref.tag:
        raise PayloadError("--push needs a tag: REPO:TAG")
    from .models import PushEvent

    event = PushEvent(
        source="manual",
        repo=ref.path,
        tag=ref.tag,
        registry=ref.domain,
        digest=ref.digest,
        pusher=os.environ.get("USER"),
    )
    labelled = [] if no_docker else _labelled_services(cfg)
    planned = plan(event, cfg, labelled)
    click.echo(f"\npush {push_ref}:")
    if not planned:
        click.secho("  matches no rule: it would be recorded as ignored", fg="yellow")
    for p in planned:
        what = (
            f"update service {p.target}"
            if p.kind == "service"
            else f"run {json.dumps(p.action['argv'])}"
        )
        click.echo(f"  [{p.rule}] {what}")


def _labelled_services(cfg: Config) -> list[Any]:
    from .executors.swarm import DockerConnection, list_labelled_services

    try:
        return list_labelled_services(DockerConnection(cfg.docker_host))
    except Exception as exc:
        click.secho(
            f"  (engine not reachable, labelled services not listed: {exc})", fg="yellow", err=True
        )
        return []


# ---------------------------------------------------------------- trigger / history


@main.command()
@click.argument("repo")
@click.argument("tag")
@click.option("--digest", help="Deploy exactly this digest (sha256:…).")
@click.option("--registry", help="Registry host[:port] the image lives in.")
@click.option("--config", "-c", "config_path", help=CONFIG_HELP)
@click.option("--db", help="Store to write to [default: the config's].")
@click.option("--wait/--no-wait", default=False, help="Wait until the deploys finish.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait with --wait.")
def trigger(
    repo: str,
    tag: str,
    digest: str | None,
    registry: str | None,
    config_path: str | None,
    db: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Queue a push of REPO:TAG by hand, as if the registry had sent it.

    The running server picks it up within a second.
    """
    from .intake.parsers import parse_generic
    from .planner import plan
    from .store import open_store

    cfg = _load(config_path, db=db)
    body: dict[str, Any] = {
        "repo": repo,
        "tag": tag,
        "digest": digest,
        "registry": registry,
        "pusher": _safe_user(),
    }
    events, _ = parse_generic(body)
    event = events[0].__class__(**{**events[0].__dict__, "source": "manual"})
    labelled = _labelled_services(cfg) if cfg.discovery.labels else []
    store = open_store(cfg.db_target)
    recorded = store.record_event(
        event, plan(event, cfg, labelled), payload=json.dumps(body), now=time.time(), dedup_window=0
    )
    click.echo(
        f"event {recorded.event_id}: {recorded.status}; "
        f"rules {', '.join(recorded.matched_rules) or '-'}; "
        f"deploys {', '.join(map(str, recorded.deploy_ids)) or '-'}"
    )
    if not wait or not recorded.deploy_ids:
        return
    deadline = time.monotonic() + timeout
    pending = set(recorded.deploy_ids)
    failed = False
    while pending and time.monotonic() < deadline:
        for deploy_id in sorted(pending):
            record = store.get_deploy(deploy_id)
            if record is not None and record.status.final:
                pending.discard(deploy_id)
                failed |= record.status.value == "failed"
                click.echo(
                    f"deploy {deploy_id} {record.target}: {record.status}"
                    + (f" — {record.error}" if record.error else "")
                )
        time.sleep(0.5)
    if pending:
        raise DeployError(f"timed out waiting for deploys {sorted(pending)} (is the server up?)")
    if failed:
        sys.exit(1)


def _safe_user() -> str | None:
    user = os.environ.get("USER") or os.environ.get("LOGNAME")
    return user if user and user.replace("-", "").replace("_", "").isalnum() else None


@main.command()
@click.option("--config", "-c", "config_path", help=CONFIG_HELP)
@click.option("--db", help="Store to read [default: the config's].")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--target", help="Only this service (or command name).")
@click.option(
    "--status",
    type=click.Choice(
        ["queued", "running", "succeeded", "failed", "superseded", "unchanged", "ignored"]
    ),
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def history(
    config_path: str | None,
    db: str | None,
    limit: int,
    target: str | None,
    status: str | None,
    as_json: bool,
) -> None:
    """Show recent deploys, newest first."""
    from .reference import short_digest
    from .store import DeployFilter, open_store

    cfg = _load(config_path, db=db)
    store = open_store(cfg.db_target)
    records = store.list_deploys(DeployFilter(target=target, status=status, limit=limit))
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    if not records:
        click.echo("no deploys yet")
        return
    header = f"{'ID':>5}  {'WHEN (UTC)':19}  {'STATUS':10}  {'TARGET':24}  {'IMAGE':40}  TIME"
    click.echo(header)
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.created_at))
        image = f"{r.repo}:{r.tag}@{short_digest(r.digest or _digest(r.new_image))}"
        took = f"{r.duration:.1f}s" if r.duration is not None else "-"
        color = {"succeeded": "green", "failed": "red", "running": "cyan"}.get(str(r.status))
        click.echo(
            f"{r.id:>5}  {when:19}  "
            + click.style(f"{r.status!s:10}", fg=color)
            + f"  {r.target[:24]:24}  {image[:40]:40}  {took}"
        )
        if r.error:
            click.echo(f"       {r.error.splitlines()[0][:110]}")


def _digest(image: str | None) -> str | None:
    return image.rpartition("@")[2] if image and "@" in image else None


# ---------------------------------------------------------------- server actions (web API)

from .web.cli_actions import COMMANDS as _API_COMMANDS  # noqa: E402

for _command in _API_COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
