"""``autodock proxy render|sync``: the nginx proxy configured from service labels."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path

import click
import yaml

__all__ = ["proxy"]

DOCKER_HOST_HELP = "Docker engine URL [env DOCKER_HOST]."


def _client(docker_host: str | None):  # type: ignore[no-untyped-def]
    import docker

    if docker_host:
        return docker.DockerClient(base_url=docker_host, timeout=60)
    return docker.from_env(timeout=60)


@click.group()
def proxy() -> None:
    """nginx proxy config rendered from service labels (autodock.proxy.host/path/port).

    Label a service with autodock.proxy.host=NAME (and optionally .path, .port, .strip)
    and the proxy routes NAME to it; see docs/proxy.md.
    """


@proxy.command()
@click.option("--docker-host", envvar="DOCKER_HOST", help=DOCKER_HOST_HELP)
@click.option(
    "--services",
    "services_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='Render from a YAML/JSON list of {"name", "labels"} instead of the engine.',
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check/--no-check", default=True, help="Validate with `nginx -t` [on].")
@click.option("--listen", default=80, show_default=True, type=click.IntRange(1, 65535))
@click.option("--resolver", default="127.0.0.11", show_default=True)
def render(
    docker_host: str | None,
    services_file: Path | None,
    output: Path | None,
    check: bool,
    listen: int,
    resolver: str,
) -> None:
    """Print (or write) the nginx.conf for the labelled services."""
    from .check import NginxNotFound, nginx_test
    from .render import RenderOptions, routes_from_services
    from .render import render as render_conf

    if services_file is not None:
        services = yaml.safe_load(services_file.read_text()) or []
        if not isinstance(services, list):
            raise click.ClickException(f"{services_file}: expected a list of services")
    else:
        from .discover import discover_services

        client = _client(docker_host)
        try:
            services = discover_services(client)
        finally:
            client.close()
    _, problems = routes_from_services(services)
    for problem in problems:
        click.secho(f"warning: {problem}", fg="yellow", err=True)
    text = render_conf(services, RenderOptions(listen=listen, resolver=resolver))
    if check:
        try:
            ok, out = nginx_test(text)
        except NginxNotFound as exc:
            raise click.ClickException(str(exc)) from None
        if not ok:
            click.echo(text, err=True)
            raise click.ClickException(f"nginx -t rejected the config:\n{out}")
    if output is not None:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.write(text)


@proxy.command()
@click.option("--docker-host", envvar="DOCKER_HOST", help=DOCKER_HOST_HELP)
@click.option("--service", "proxy_service", help="The proxy service [labelled role=proxy].")
@click.option("--watch", is_flag=True, help="Keep syncing on every change until stopped.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between checks.")
def sync(docker_host: str | None, proxy_service: str | None, watch: bool, interval: float) -> None:
    """Roll the proxy service onto the config for the current labels."""
    from .sync import ProxySync

    client = _client(docker_host)
    syncer = ProxySync(client, proxy_service=proxy_service, interval=interval)
    if watch:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(syncer.run())
        return
    try:
        result = syncer.sync_once()
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in result.problems:
        click.secho(f"warning: {problem}", fg="yellow", err=True)
    what = "rolled out" if result.changed else "already current"
    click.echo(json.dumps({"config": result.config_name, "routes": result.routes}) + f"  {what}")
