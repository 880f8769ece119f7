"""CLI mirrors of the API's actions: they talk to a running server over HTTP.

``autodock status | rollback SERVICE | pause [SERVICE | --rule NAME] | resume … | retry ID``
"""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import quote

import click
import httpx

from ..config import DEFAULT_PORT
from ..exceptions import AutodockError

__all__ = ["COMMANDS", "pause", "resume", "retry", "rollback", "status"]

DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"


def _server_options(fn: Any) -> Any:
    fn = click.option(
        "--token",
        envvar="AUTODOCK_API_TOKEN",
        show_envvar=True,
        help="API bearer token [env AUTODOCK_API_TOKEN].",
    )(fn)
    return click.option(
        "--url",
        envvar="AUTODOCK_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The autodock server [env AUTODOCK_URL].",
    )(fn)


def _call(method: str, url: str, path: str, token: str | None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url.rstrip("/") + path, headers=headers, timeout=30, **kw)
    except httpx.HTTPError as exc:
        raise AutodockError(f"cannot reach autodock at {url}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    if response.status_code >= 400:
        detail = body.get("detail") if isinstance(body, dict) else body
        hint = " (pass --token or set AUTODOCK_API_TOKEN)" if response.status_code == 401 else ""
        raise AutodockError(f"{response.status_code}: {detail}{hint}")
    return body


def _short(digest: str | None) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def _ago(t: float | None) -> str:
    if not t:
        return ""
    s = max(0.0, time.time() - t)
    if s < 60:
        return f"{s:.0f}s ago"
    if s < 3600:
        return f"{s / 60:.0f}m ago"
    if s < 86400:
        return f"{s / 3600:.0f}h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


@click.command()
@_server_options
@click.option("--all", "show_all", is_flag=True, help="Also services no rule deploys.")
@click.option("--json", "as_json", is_flag=True, help="The API's JSON instead of a table.")
def status(url: str, token: str | None, show_all: bool, as_json: bool) -> None:
    """Services as on the dashboard: image, digest, replicas, rules, last deploy."""
    params = {} if show_all else {"managed": "true"}
    services = _call("GET", url, "/api/v1/services", token, params=params)["services"]
    if as_json:
        click.echo(json.dumps(services, indent=2))
        return
    if not services:
        click.echo("no services" + ("" if show_all else " deployed by a rule (try --all)"))
        return
    header = (
        f"{'SERVICE':24}  {'IMAGE:TAG':40}  {'DIGEST':12}  {'REPLICAS':8}  "
        f"{'RULES':20}  LAST DEPLOY"
    )
    click.echo(header)
    for s in services:
        image = f"{s['image_name']}:{s['tag']}" if s["tag"] else str(s["image_name"])
        reps = s["replicas"]
        replicas = f"{reps['running']}/{reps['desired']}"
        rep_color = "green" if reps["running"] >= reps["desired"] else "yellow"
        last = s["last_deploy"]
        if last:
            shown = "held" if last.get("held") else last["status"]
            color = {"succeeded": "green", "failed": "red", "running": "cyan"}.get(shown)
            when = _ago(last["finished_at"] or last["created_at"])
            last_text = click.style(shown, fg=color) + f" #{last['id']} {when}"
        else:
            last_text = "never"
        name = s["name"] + (" (paused)" if s["paused"] else "")
        click.echo(
            f"{name[:24]:24}  {image[-40:]:40}  {_short(s['digest']):12}  "
            + click.style(f"{replicas:8}", fg=rep_color)
            + f"  {','.join(s['rules'])[:20] or '-':20}  {last_text}"
        )


@click.command()
@_server_options
@click.argument("service")
def rollback(url: str, token: str | None, service: str) -> None:
    """Roll SERVICE back to its previous spec (queued like a deploy)."""
    reply = _call("POST", url, f"/api/v1/services/{quote(service, safe='')}/rollback", token)
    click.echo(f"deploy {reply['deploy']}: rolling {service} back to {reply['to']}")


def _pause_path(service: str | None, rule: str | None, verb: str) -> str:
    if bool(service) == bool(rule):
        raise click.UsageError("give a SERVICE or --rule NAME (one of them)")
    if rule:
        return f"/api/v1/rules/{quote(rule, safe='/')}/{verb}"
    return f"/api/v1/services/{quote(str(service), safe='')}/{verb}"


@click.command()
@_server_options
@click.argument("service", required=False)
@click.option("--rule", help="Pause a rule instead of a service.")
@click.option("--reason", help="Shown with the pause.")
def pause(
    url: str, token: str | None, service: str | None, rule: str | None, reason: str | None
) -> None:
    """Hold deploys of SERVICE (or of --rule NAME); pushes are still recorded."""
    path = _pause_path(service, rule, "pause")
    reply = _call("POST", url, path, token, json={"reason": reason, "by": "cli"})
    click.echo(f"paused {reply['key']}")


@click.command()
@_server_options
@click.argument("service", required=False)
@click.option("--rule", help="Resume a rule instead of a service.")
def resume(url: str, token: str | None, service: str | None, rule: str | None) -> None:
    """Release held deploys of SERVICE (or --rule NAME): the latest push deploys."""
    reply = _call("POST", url, _pause_path(service, rule, "resume"), token)
    click.echo(f"resumed {reply['key']}" + ("" if reply["was_paused"] else " (was not paused)"))


@click.command()
@_server_options
@click.argument("deploy_id", type=int)
def retry(url: str, token: str | None, deploy_id: int) -> None:
    """Queue failed deploy DEPLOY_ID's target again."""
    reply = _call("POST", url, f"/api/v1/deploys/{deploy_id}/retry", token)
    click.echo(f"deploy {reply['deploy']}: retrying {reply['target']} (was {deploy_id})")


COMMANDS = [status, rollback, pause, resume, retry]


@click.command()
@_server_options
@click.argument("deploy_id", type=int)
@click.option(
    "--by", default=lambda: os.environ.get("USER", "cli"), help="Recorded as the approver."
)
def approve(url: str, token: str | None, deploy_id: int, by: str) -> None:
    """Let deploy DEPLOY_ID, awaiting approval, run."""
    reply = _call("POST", url, f"/api/v1/deploys/{deploy_id}/approve", token, json={"by": by})
    click.echo(f"deploy {deploy_id} ({reply.get('target')}): approved by {by}; queued")


@click.command()
@_server_options
@click.argument("deploy_id", type=int)
@click.option(
    "--by", default=lambda: os.environ.get("USER", "cli"), help="Recorded as who refused."
)
def reject(url: str, token: str | None, deploy_id: int, by: str) -> None:
    """Refuse deploy DEPLOY_ID, awaiting approval."""
    _call("POST", url, f"/api/v1/deploys/{deploy_id}/reject", token, json={"by": by})
    click.echo(f"deploy {deploy_id}: rejected by {by}")


@click.command()
@_server_options
@click.argument("state", type=click.Choice(["on", "off", "status"]))
@click.option("--reason", help="Shown with the freeze (e.g. 'release day').")
def freeze(url: str, token: str | None, state: str, reason: str | None) -> None:
    """Freeze deploys (pushes are still recorded and coalesce; the latest deploys on
    thaw), thaw them, or show the state."""
    if state == "status":
        reply = _call("GET", url, "/api/v1/freeze", token)
    else:
        body = {"on": state == "on", "reason": reason, "by": os.environ.get("USER")}
        reply = _call("POST", url, "/api/v1/freeze", token, json=body)
    if reply["frozen"]:
        click.echo(f"frozen: {reply.get('reason') or 'no reason given'}")
    else:
        click.echo("not frozen: deploys run")


COMMANDS += [approve, reject, freeze]
