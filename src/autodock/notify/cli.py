"""``autodock notify``: check notification channels by sending a test message."""

from __future__ import annotations

import asyncio
import time

import click
import httpx

from ..config import Config
from ..exceptions import ConfigError, DeployError
from .delivery import Outcome
from .messages import test_notifications
from .outbox import deliver
from .records import Notification, redact_url

__all__ = ["notify"]


@click.group()
def notify() -> None:
    """Notification channels (Slack, webhooks, Docker Hub callbacks)."""


@notify.command("test")
@click.argument("channel", required=False)
@click.option("--config", "-c", "config_path", help="Config file [env AUTODOCK_CONFIG].")
def test(channel: str | None, config_path: str | None) -> None:
    """Send a test message to CHANNEL (default: every Slack and webhook notifier)."""
    from ..cli import _load

    cfg = _load(config_path)
    names = _channels(cfg, channel)
    results = asyncio.run(_send_all(cfg, names))
    failed = False
    for name, outcome in results:
        where = redact_url(_endpoint(cfg, name)) or "-"
        if outcome.sent:
            click.secho(f"✔ {name} ({cfg.notifiers[name].type}, {where}): sent", fg="green")
        else:
            failed = True
            kind = cfg.notifiers[name].type
            click.secho(f"✖ {name} ({kind}, {where}): {outcome.error}", fg="red")
    if failed:
        raise DeployError("some test messages were not delivered")


def _channels(cfg: Config, channel: str | None) -> list[str]:
    if channel is not None:
        notifier = cfg.notifiers.get(channel)
        if notifier is None:
            known = ", ".join(sorted(cfg.notifiers)) or "none configured"
            raise ConfigError(f"no notifier named {channel!r} (known: {known})")
        if notifier.type == "dockerhub":
            raise ConfigError(
                "Docker Hub callbacks go to the callback_url of each push; nothing to test"
            )
        return [channel]
    names = [n for n, c in cfg.notifiers.items() if c.type != "dockerhub" and c.enabled]
    if not names:
        raise ConfigError("no slack or webhook notifiers configured under 'notifiers:'")
    return names


def _endpoint(cfg: Config, name: str) -> str | None:
    from .outbox import channel_endpoint

    return channel_endpoint(cfg.notifiers[name])


async def _send_all(cfg: Config, names: list[str]) -> list[tuple[str, Outcome]]:
    now = time.time()
    out = []
    async with httpx.AsyncClient(follow_redirects=False) as client:
        for new in test_notifications(cfg, names):
            n = Notification(
                id=0,
                deploy_id=None,
                event_id=None,
                channel=new.channel,
                kind=new.kind,
                event=new.event,
                order_key=new.order_key,
                target=None,
                payload=_json(new.payload),
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
                sent_at=None,
                last_error=None,
            )
            out.append((new.channel, await deliver(client, cfg, n, cfg.notifiers[new.channel])))
    return out


def _json(payload: object) -> str:
    import json

    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
