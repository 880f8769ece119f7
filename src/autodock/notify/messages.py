"""Deploy records → notification payloads, per channel type. Pure: no I/O, no secrets.

One message per deploy and event (``deploy.started``, ``deploy.succeeded``,
``deploy.failed``, ``deploy.rolled_back``); one Docker Hub callback per push event,
once every deploy it caused is final.
"""

from __future__ import annotations

import time
from typing import Any

from ..config import Config, NotifierConfig
from ..models import DeployRecord, DeployStatus
from ..reference import short_digest
from .records import NewNotification, NotificationBuilder

__all__ = [
    "ERROR_LIMIT",
    "OUTPUT_TAIL_CHARS",
    "OUTPUT_TAIL_LINES",
    "PAYLOAD_VERSION",
    "build_notifications",
    "deploy_summary",
    "event_name",
    "hub_callback_payload",
    "hub_channel",
    "image_parts",
    "routed_channels",
    "slack_payload",
    "started_notifications",
    "test_notifications",
    "webhook_payload",
]

PAYLOAD_VERSION = 1
ERROR_LIMIT = 1500  # characters of task error text in a message
OUTPUT_TAIL_LINES = 20  # lines of a command's output shown on failure
OUTPUT_TAIL_CHARS = 1500
HUB_DESCRIPTION_LIMIT = 255  # Docker Hub shows a short line

_EVENTS = {
    "succeeded": "deploy.succeeded",
    "failed": "deploy.failed",
    "rolled_back": "deploy.rolled_back",
}
_TITLES = {
    "deploy.started": ("🚀", "Deploy started", "#439fe0"),
    "deploy.succeeded": ("✅", "Deploy succeeded", "#2eb67d"),
    "deploy.failed": ("❌", "Deploy failed", "#e01e5a"),
    "deploy.rolled_back": ("↩️", "Deploy rolled back", "#ecb22e"),
    "deploy.awaiting_approval": ("✋", "Deploy awaiting approval", "#ecb22e"),
    "test": ("🔔", "Test message", "#439fe0"),
}


_BUTTONS = {
    "deploy.succeeded": [("Revert", "danger", "autodock_revert")],
    "deploy.awaiting_approval": [
        ("Approve", "primary", "autodock_approve"),
        ("Reject", "danger", "autodock_reject"),
    ],
}


def event_name(status: DeployStatus | str) -> str | None:
    """The notification event for a final status, or None when nothing is worth saying
    (``unchanged``, ``superseded``: the service did not change)."""
    return _EVENTS.get(str(status))


def image_parts(image: str | None) -> tuple[str | None, str | None]:
    """``host:5000/org/app:stage@sha256:…`` → ``("stage", "sha256:…")``."""
    if not image:
        return None, None
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else None
    return tag, digest or None


def _bounded_tail(text: str | None, lines: int, chars: int) -> str | None:
    if not text:
        return None
    kept = text.rstrip().splitlines()[-lines:]
    out = "\n".join(kept)
    return out if len(out) <= chars else "…" + out[-(chars - 1) :]


def _bounded_head(text: str | None, chars: int) -> str | None:
    if not text:
        return None
    text = text.strip()
    return text if len(text) <= chars else text[: chars - 1] + "…"


def deploy_url(record: DeployRecord, public_url: str | None) -> str | None:
    return f"{public_url.rstrip('/')}/deploys/{record.id}" if public_url else None


def deploy_summary(
    record: DeployRecord, event: str, public_url: str | None = None
) -> dict[str, Any]:
    """The ``deploy`` object of the webhook payload (documented in docs/notifications.md)."""
    old_tag, old_digest = image_parts(record.old_image)
    new_tag, new_digest = image_parts(record.new_image)
    failed = event in ("deploy.failed", "deploy.rolled_back")
    return {
        "id": record.id,
        "event_id": record.event_id,
        "url": deploy_url(record, public_url),
        "rule": record.rule,
        "kind": record.kind,
        "target": record.target,
        "status": "running" if event == "deploy.started" else str(record.status),
        "repo": record.repo,
        "registry": record.registry,
        "tag": record.tag,
        "pusher": record.pusher,
        "source": record.source,
        "old": {"image": record.old_image, "tag": old_tag, "digest": old_digest},
        "new": {
            "image": record.new_image,
            "tag": new_tag or record.tag,
            "digest": new_digest or record.digest,
        },
        "attempts": record.attempts,
        "started_at": record.started_at,
        "finished_at": None if event == "deploy.started" else record.finished_at,
        "duration": None if event == "deploy.started" else record.duration,
        "error": _bounded_head(record.error, ERROR_LIMIT) if failed else None,
        "output_tail": (
            _bounded_tail(record.output, OUTPUT_TAIL_LINES, OUTPUT_TAIL_CHARS)
            if failed and record.kind == "command"
            else None
        ),
    }


def webhook_payload(
    record: DeployRecord, event: str, public_url: str | None = None
) -> dict[str, Any]:
    return {
        "version": PAYLOAD_VERSION,
        "event": event,
        "deploy": deploy_summary(record, event, public_url),
    }


def _image_line(tag: str | None, digest: str | None) -> str:
    return f"`{tag or '?'}` `{short_digest(digest)}`"


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"


def slack_payload(
    record: DeployRecord, event: str, public_url: str | None = None, interactive: bool = False
) -> dict[str, Any]:
    """Blocks inside an attachment (so the message gets a result colour), with a text
    fallback for notifications and clients that show no blocks."""
    d = deploy_summary(record, event, public_url)
    icon, title, color = _TITLES.get(event, ("ℹ️", event, "#439fe0"))
    image = f"{record.registry + '/' if record.registry else ''}{record.repo}"
    old, new = d["old"], d["new"]
    change = f"{_image_line(old['tag'], old['digest'])} → {_image_line(new['tag'], new['digest'])}"
    who = record.pusher or "unknown"
    noun = "Service" if record.kind == "service" else "Command"
    took = _took(d["duration"])
    fallback = f"{icon} {title}: {record.target} {image}:{record.tag}"
    if event != "deploy.started":
        fallback += f" ({short_digest(old['digest'])} → {short_digest(new['digest'])}, {took})"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{icon} *{title}: `{record.target}`*"},
        },
        {
            "type": "section",
            "fields": [
                {
                    "type": "mrkdwn",
                    "text": f"*{noun}*\n{record.target}",
                },
                {"type": "mrkdwn", "text": f"*Image*\n`{image}`"},
                {"type": "mrkdwn", "text": f"*Old → new*\n{change}"},
                {"type": "mrkdwn", "text": f"*Pushed by*\n{who}"},
                {"type": "mrkdwn", "text": f"*Took*\n{took}"},
                {"type": "mrkdwn", "text": f"*Result*\n{d['status']}"},
            ],
        },
    ]
    if d["error"]:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Error*\n```{d['error']}```"}}
        )
    if d["output_tail"]:
        text = f"*Output (last lines)*\n```{d['output_tail']}```"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    context = f"deploy #{record.id} · rule {record.rule} · via {record.source or '-'}"
    if d["url"]:
        context += f" · <{d['url']}|open in autodock>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    buttons = _BUTTONS.get(event, []) if interactive else []
    if event == "deploy.succeeded" and record.kind != "service":
        buttons = []  # only a service has an image to go back to
    if buttons:  # handled by /hooks/slack/actions (notify/slack_actions.py)
        elements = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": label},
                "style": style,
                "action_id": action_id,
                "value": str(record.id),
            }
            for label, style, action_id in buttons
        ]
        blocks.append({"type": "actions", "elements": elements})
    return {
        "text": fallback,
        "attachments": [{"color": color, "fallback": fallback, "blocks": blocks}],
    }


def hub_callback_payload(
    records: list[DeployRecord], public_url: str | None = None, context: str = "autodock"
) -> dict[str, Any]:
    """Docker Hub's callback: ``success`` if every deploy of the push worked, ``failure``
    if one failed, ``error`` if autodock itself broke."""
    ran = [r for r in records if r.status in (DeployStatus.SUCCEEDED, DeployStatus.UNCHANGED)]
    bad = [r for r in records if str(r.status) in ("failed", "rolled_back")]
    if bad:
        broken = any((r.error or "").startswith("internal error") for r in bad)
        state = "error" if broken else "failure"
        first = sorted(bad, key=lambda r: r.id)[0]
        reason = (first.error or str(first.status)).splitlines()[0]
        total = len(bad) + len(ran)
        description = f"{len(bad)} of {total} deploys failed: {first.target}: {reason}"
        link = first
    else:
        state = "success"
        names = ", ".join(sorted({r.target for r in ran})) or "nothing to change"
        description = f"deployed {names}"
        link = sorted(records, key=lambda r: r.id)[0] if records else None
    body: dict[str, Any] = {
        "state": state,
        "description": _bounded_head(description, HUB_DESCRIPTION_LIMIT),
        "context": context,
    }
    url = deploy_url(link, public_url) if link is not None else None
    if url:
        body["target_url"] = url
    return body


# ---------------------------------------------------------------- routing


def routed_channels(config: Config, rule_name: str) -> list[str]:
    """The notifiers a deploy of ``rule_name`` reports to: the rule's ``notify`` list,
    else ``default_notify`` (labelled services have no rule: the default applies)."""
    for rule in config.rules:
        if rule.display_name == rule_name and rule.notify is not None:
            return list(rule.notify)
    return list(config.default_notify)


def hub_channel(config: Config) -> tuple[str, NotifierConfig] | None:
    """Docker Hub callbacks are on unless a ``type: dockerhub`` notifier disables them."""
    for name, cfg in config.notifiers.items():
        if cfg.type == "dockerhub":
            return (name, cfg) if cfg.enabled else None
    return "dockerhub", NotifierConfig(type="dockerhub")


def _for_channels(
    config: Config, record: DeployRecord, event: str, short: str
) -> list[NewNotification]:
    out = []
    for name in routed_channels(config, record.rule):
        cfg = config.notifiers.get(name)
        if cfg is None or not cfg.enabled or cfg.type == "dockerhub" or short not in cfg.events:
            continue
        if cfg.type == "slack":
            payload = slack_payload(
                record, event, config.public_url, interactive=config.slack_app is not None
            )
        else:
            payload = webhook_payload(record, event, config.public_url)
        out.append(
            NewNotification(
                channel=name,
                kind=cfg.type,
                event=event,
                payload=payload,
                deploy_id=record.id,
                event_id=record.event_id,
            )
        )
    return out


def build_notifications(config: Config) -> NotificationBuilder:
    """The builder the worker hands to ``store.finish``: runs inside its transaction."""

    def build(record: DeployRecord, siblings: list[DeployRecord]) -> list[NewNotification]:
        out: list[NewNotification] = []
        event = event_name(record.status)
        if event is not None:
            out += _for_channels(config, record, event, event.split(".", 1)[1])
        hub = hub_channel(config)
        if hub is not None and record.callback_url:
            everyone = siblings or [record]
            if all(r.status.final for r in everyone):
                name, cfg = hub
                payload = hub_callback_payload(everyone, config.public_url, cfg.context)
                out.append(
                    NewNotification(
                        channel=name,
                        kind="dockerhub",
                        event=f"push.{payload['state']}",
                        payload=payload,
                        deploy_id=record.id,
                        event_id=record.event_id,
                        target=record.callback_url,
                    )
                )
        return out

    return build


def started_notifications(config: Config, record: DeployRecord) -> list[NewNotification]:
    """``deploy.started`` for notifiers that opted in (first attempt only)."""
    if record.attempts > 1:
        return []
    return _for_channels(config, record, "deploy.started", "started")


def approval_notifications(config: Config, record: DeployRecord) -> list[NewNotification]:
    """``deploy.awaiting_approval``: who must act, with Approve/Reject buttons on Slack."""
    return _for_channels(config, record, "deploy.awaiting_approval", "awaiting_approval")


def test_notifications(config: Config, names: list[str]) -> list[NewNotification]:
    """A harmless message per channel, for ``autodock notify test``."""
    now = time.time()
    record = DeployRecord(
        id=0,
        event_id=0,
        rule="autodock notify test",
        kind="service",
        target="example_service",
        target_key="test",
        action={},
        status=DeployStatus.SUCCEEDED,
        attempts=1,
        created_at=now,
        repo="example/app",
        tag="stage",
        pusher="autodock",
        source="test",
        started_at=now - 1.5,
        finished_at=now,
    )
    out = []
    for name in names:
        cfg = config.notifiers[name]
        if cfg.type == "slack":
            payload = slack_payload(record, "test", None)
            payload["text"] = f"🔔 autodock test message for notifier {name!r}: it works."
        elif cfg.type == "webhook":
            payload = webhook_payload(record, "test", None)
        else:
            continue  # Docker Hub callback URLs come with pushes; there is none to test
        out.append(NewNotification(channel=name, kind=cfg.type, event="test", payload=payload))
    return out
