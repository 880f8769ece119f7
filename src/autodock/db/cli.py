"""``autodock db`` (clone, jobs) and the ``parity`` command.

``parity`` is a standalone command object, meant to be registered at the top level of
the main CLI; until then it is also reachable as ``autodock db parity``.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from ..exceptions import ConfigError
from . import CloneError

__all__ = ["db", "parity"]

CONFIG_HELP = "Config file with a db_clone section [env AUTODOCK_CONFIG; default ./autodock.yml]."


def _section(path: str | None) -> dict[str, Any]:
    """The ``db_clone`` section of the config file, read directly (it is ours to parse)."""
    from .schedule import section_from

    path = path or os.environ.get("AUTODOCK_CONFIG")
    if not path:
        if not Path("autodock.yml").exists():
            return {}
        path = "autodock.yml"
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    if text.lstrip().startswith("{") and path.endswith(".json"):
        return {}  # a legacy config.json has no db_clone section
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    return section_from(data if isinstance(data, dict) else {})


def _split(values: tuple[str, ...]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


@click.group()
def db() -> None:
    """Clone PostgreSQL data from production to stage, and compare the two."""


@db.command("clone")
@click.option("--from", "source", envvar="AUTODOCK_CLONE_FROM", help="Source (production) URL.")
@click.option("--to", "target", envvar="AUTODOCK_CLONE_TO", help="Target (stage) URL.")
@click.option("--job", help="Run the db_clone job of this name from the config now.")
@click.option("--schema", default="public", show_default=True, help="Schema to clone.")
@click.option("--tables", multiple=True, help="Only these tables (comma-separated; repeatable).")
@click.option("--exclude", multiple=True, help="Leave these tables out (comma-separated).")
@click.option("--where", multiple=True, metavar="'TABLE: CONDITION'", help="Row filter.")
@click.option(
    "--mask",
    multiple=True,
    metavar="TABLE.COLUMN=STRATEGY",
    help="hash, fake, null or fixed:VALUE; applied while streaming.",
)
@click.option(
    "--mask-salt",
    envvar="AUTODOCK_MASK_SALT",
    help="Key for hash/fake (stable across runs); default: random per run.",
)
@click.option("--schema-only", is_flag=True, help="Tables, keys and sequences; no rows.")
@click.option("--keep-old", is_flag=True, help="Keep the replaced schema (renamed) afterwards.")
@click.option("--dry-run", is_flag=True, help="Show the tables and row queries; copy nothing.")
@click.option("--config", "-c", "config_path", help=CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the result record as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def clone_cmd(
    source: str | None,
    target: str | None,
    job: str | None,
    schema: str,
    tables: tuple[str, ...],
    exclude: tuple[str, ...],
    where: tuple[str, ...],
    mask: tuple[str, ...],
    mask_salt: str | None,
    schema_only: bool,
    keep_old: bool,
    dry_run: bool,
    config_path: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Copy a schema's tables from --from into --to, atomically, never into production.

    Rows stream through COPY into a fresh schema on the target that replaces the old
    one in a single transaction. A subset (--tables/--exclude/--where) pulls in the
    rows its foreign keys reference. Refuses when --to is --from or matches a
    db_clone.production entry of the config, or the target database has the setting
    autodock.role = production.
    """
    from .copy import CloneOptions, clone
    from .progress import Progress
    from .schedule import load_jobs
    from .urls import ProductionGuard

    section = _section(config_path)
    guard = ProductionGuard.from_config(section)
    if job:
        jobs = {j.name: j for j in load_jobs(section)}
        if job not in jobs:
            raise CloneError(f"no db_clone job {job!r} (have: {', '.join(jobs) or 'none'})")
        options = jobs[job].options
        options.dry_run = dry_run
    else:
        if not source or not target:
            raise click.UsageError("give --from and --to (or --job)")
        options = CloneOptions.build(
            source,
            target,
            tables=_split(tables) or None,
            exclude=_split(exclude),
            where=list(where),
            mask=list(mask),
            schema=schema,
            schema_only=schema_only,
            mask_salt=mask_salt,
            keep_old=keep_old,
            dry_run=dry_run,
        )
    progress = Progress(sys.stderr, enabled=not quiet)
    result = clone(options, guard=guard, progress=progress)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif dry_run:
        for t in result.tables:
            click.echo(f"{t['table']}: {t['mode']} ({t['reason']})\n    {t['query']}")
    else:
        click.echo(
            f"cloned {len(result.tables)} table(s), {result.rows:,} rows into "
            f"{result.target} schema {result.schema} in {result.duration_s:.1f}s"
        )


@db.command("jobs")
@click.option("--config", "-c", "config_path", help=CONFIG_HELP)
def jobs_cmd(config_path: str | None) -> None:
    """List the config's scheduled clone jobs and when each runs next (UTC)."""
    from .schedule import load_jobs
    from .urls import redact

    jobs = load_jobs(_section(config_path), resolve_urls=False)
    if not jobs:
        click.echo("no db_clone jobs configured")
        return
    now = datetime.now(UTC)
    for job in jobs:
        nxt = job.cron.next_after(now)
        when = nxt.strftime("%Y-%m-%d %H:%M") if nxt else "never"
        src = job.raw.get("from_env") or redact(job.options.source)
        dst = job.raw.get("to_env") or redact(job.options.target)
        click.echo(f"{job.name}: '{job.cron.text}' next {when}  {src} -> {dst}")


@click.command("parity")
@click.option("--stage", "stage_prefix", required=True, help="Service name prefix of stage.")
@click.option("--prod", "prod_prefix", required=True, help="Service name prefix of production.")
@click.option("--stage-db", help="Stage database URL: compare schemas too.")
@click.option("--prod-db", help="Production database URL (read only).")
@click.option("--db-schema", default="public", show_default=True)
@click.option(
    "--allow",
    multiple=True,
    metavar="PATTERN",
    help="Differences to accept, as globs on keys: '*.replicas', 'api.env.*', 'db.*'.",
)
@click.option("--docker-host", envvar="DOCKER_HOST", help="Docker engine URL [env DOCKER_HOST].")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_context
def parity(
    ctx: click.Context,
    stage_prefix: str,
    prod_prefix: str,
    stage_db: str | None,
    prod_db: str | None,
    db_schema: str,
    allow: tuple[str, ...],
    docker_host: str | None,
    as_json: bool,
) -> None:
    """Report how stage differs from production; exit 1 on differences not --allow'ed.

    Compares images and tags, environment keys (values are never shown), configs and
    secrets (by mount target), networks, replicas and resources of the services named
    PREFIX*, paired by the rest of their names; with --stage-db/--prod-db also tables,
    columns, constraints and indexes.
    """
    import docker

    from ..exceptions import AutodockError
    from .parity import diff_schemas, diff_summaries, read_schema, read_services, render_text

    if bool(stage_db) != bool(prod_db):
        raise click.UsageError("give both --stage-db and --prod-db, or neither")
    try:
        client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
        try:
            stage = read_services(client, stage_prefix)
            prod = read_services(client, prod_prefix)
        finally:
            client.close()
    except docker.errors.DockerException as exc:
        raise AutodockError(f"cannot read services from the engine: {exc}") from exc
    diffs = diff_summaries(stage, prod, allow)
    if stage_db and prod_db:
        diffs += diff_schemas(
            read_schema(stage_db, db_schema), read_schema(prod_db, db_schema), allow
        )
    blocking = [d for d in diffs if not d.allowed]
    if as_json:
        doc = {
            "stage": stage_prefix,
            "prod": prod_prefix,
            "services": {"stage": sorted(stage), "prod": sorted(prod)},
            "differences": [d.to_dict() for d in diffs],
            "blocking": len(blocking),
            "differ": bool(blocking),
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(render_text(diffs, stage_prefix, prod_prefix))
    if blocking:
        ctx.exit(1)


db.add_command(parity)


if __name__ == "__main__":  # pragma: no cover - `python -m autodock.db.cli clone ...`
    db()
