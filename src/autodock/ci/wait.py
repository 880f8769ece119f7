"""``autodock ci wait``: block until the push this pipeline made is deployed, so the
pipeline goes red when stage did."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import httpx

__all__ = ["WAIT_EXIT", "wait_cmd"]

# 0 deployed · 1 failed or rolled back · 7 timed out · 8 no rule deploys it (or held)
WAIT_EXIT = {"succeeded": 0, "superseded": 0, "failed": 1, "held": 8}
TIMEOUT_EXIT = 7


@click.command("wait")
@click.option("--repo", required=True, help="Repository path as pushed, e.g. org/app.")
@click.option("--tag", required=True, help="The tag pushed, e.g. stage (see `autodock ci tag`).")
@click.option("--digest", help="Wait for exactly this push (sha256:…, printed by `ci push`).")
@click.option(
    "--url",
    envvar="AUTODOCK_URL",
    default="http://127.0.0.1:58732",
    show_default=True,
    help="autodock's base URL [env AUTODOCK_URL].",
)
@click.option("--token", envvar="AUTODOCK_API_TOKEN", help="API token [env AUTODOCK_API_TOKEN].")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
def wait_cmd(
    repo: str,
    tag: str,
    digest: str | None,
    url: str,
    token: str | None,
    timeout: float,
    interval: float,
) -> None:
    """Wait until autodock has deployed REPO:TAG; exit 0 when it runs, 1 when the deploy
    failed or was rolled back, 7 on timeout, 8 when nothing deploys it.

    Without --digest it follows the newest push of REPO:TAG recorded after it started
    (give --digest to be exact when pushes race).
    """
    since = None if digest else time.time() - 5  # a push acknowledged just before us counts
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params: dict[str, Any] = {"repo": repo, "tag": tag}
    if digest:
        params["digest"] = digest
    if since:
        params["since"] = since
    deadline = time.monotonic() + timeout
    last = ""
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        while True:
            state = _poll(client, params)
            line = _describe(state)
            if line != last:
                click.echo(line, err=True)
                last = line
            if state["state"] in WAIT_EXIT:
                for d in state.get("deploys", []):
                    for detail in (d.get("error") or "").splitlines()[1:]:
                        click.echo(f"  {detail}", err=True)
                for image in state.get("images", []):
                    click.echo(image)
                sys.exit(WAIT_EXIT[state["state"]])
            if time.monotonic() >= deadline:
                click.echo(f"timed out after {timeout:g}s: {line}", err=True)
                sys.exit(TIMEOUT_EXIT)
            time.sleep(interval)


def _poll(client: httpx.Client, params: dict[str, Any]) -> dict[str, Any]:
    try:
        reply = client.get("/api/v1/push-status", params=params)
    except httpx.HTTPError as exc:
        return {"state": "pending", "detail": f"autodock unreachable ({exc.__class__.__name__})"}
    if reply.status_code in (401, 403):
        raise click.ClickException("autodock refused the API token (set AUTODOCK_API_TOKEN)")
    if reply.status_code >= 400:
        return {"state": "pending", "detail": f"autodock answered {reply.status_code}"}
    return dict(reply.json())


def _describe(state: dict[str, Any]) -> str:
    deploys = state.get("deploys") or []
    if not deploys:
        return f"{state['state']}: {state.get('detail', '')}".strip()
    parts = []
    for d in deploys:
        part = f"{d['target']} {d['status']}"
        if d.get("progress") and d["status"] == "running":
            part += f" ({d['progress']})"
        if d.get("error"):
            part += f": {d['error'].splitlines()[0]}"
        parts.append(part)
    return f"{state['state']}: " + "; ".join(parts)
