"""``autodock lab up|down|status``: the local multi-node swarm (see docs/lab.md)."""

from __future__ import annotations

import os

import click

from .topology import LabLayout

__all__ = ["lab"]


def _say(line: str) -> None:
    click.echo(f"[lab] {line}", err=True)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise click.ClickException("the lab creates namespaces and engines: run it as root")


@click.group()
def lab() -> None:
    """A local multi-node Docker Swarm with a registry, on one machine.

    Each node is a network namespace with its own dockerd on 10.231.0.0/24; the
    registry listens on the manager (10.231.0.1:5000). Point clients at the manager
    with DOCKER_HOST=unix:///run/autodock-lab/adl-mgr.sock.
    """


@lab.command()
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 8))
def up(workers: int) -> None:
    """Bring the lab up (idempotent: only what is missing is started)."""
    from .runtime import Lab

    _require_root()
    lab_ = Lab(LabLayout(workers=workers), say=_say)
    status = lab_.up()
    for node in status.nodes:
        click.echo(f"{node.name:10} {node.ip:12} {node.role:8} {node.node_id}")
    click.echo(f"export DOCKER_HOST={lab_.layout.manager.docker_host}")


@lab.command()
@click.option("--keep-data", is_flag=True, help="Keep engine data and registry contents.")
def down(keep_data: bool) -> None:
    """Stop what `lab up` started and remove the namespaces and links it created."""
    from .runtime import Lab

    _require_root()
    # down reads what to stop from the state file, whatever --workers was at up.
    Lab(LabLayout(workers=8), say=_say).down(purge=not keep_data)


@lab.command()
@click.option("--workers", type=click.IntRange(1, 8), help="[as many as `up` made]")
def status(workers: int | None) -> None:
    """Show each node's engine and swarm state; exit 1 unless everything is up."""
    from .runtime import Lab

    lab_ = Lab(LabLayout(workers=workers or Lab.recorded_workers()))
    st = lab_.status()
    for node in st.nodes:
        state = "engine up" if node.engine else node.detail
        click.echo(f"{node.name:10} {node.ip:12} {node.role:8} {state:12} swarm {node.swarm}")
    click.echo(f"registry   {lab_.layout.registry:12} {'up' if st.registry else 'down'}")
    click.echo(f"host link  {lab_.layout.host_ip:12} {'up' if st.host_route else 'absent'}")
    if not st.up:
        raise SystemExit(1)
