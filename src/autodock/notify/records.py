"""The outbox's nouns: a notification to write, and one read back from the store."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..models import DeployRecord

__all__ = [
    "NewNotification",
    "Notification",
    "NotificationBuilder",
    "NotificationStatus",
    "redact_url",
]

NotificationStatus = str  # "pending" | "sent" | "dead"

# Called inside the transaction that records a deploy's result, with the updated
# record and every deploy of its event (itself included); returns the rows to write.
NotificationBuilder = Callable[[DeployRecord, list[DeployRecord]], list["NewNotification"]]


def redact_url(url: str | None) -> str | None:
    """Scheme and host only: webhook paths and queries are credentials."""
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "<redacted>"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


@dataclass(frozen=True)
class NewNotification:
    """A message to queue. ``target`` holds a per-message URL (Docker Hub callbacks) only;
    configured channels' URLs and tokens are resolved when sending, never stored."""

    channel: str
    kind: str  # slack | webhook | dockerhub
    event: str  # deploy.started | deploy.succeeded | deploy.failed | deploy.rolled_back
    payload: dict[str, Any]
    deploy_id: int | None = None
    event_id: int | None = None
    target: str | None = None

    @property
    def order_key(self) -> str:
        # Messages of one deploy go out in order on each channel.
        return f"{self.deploy_id or 'none'}:{self.channel}"


@dataclass(frozen=True)
class Notification:
    id: int
    deploy_id: int | None
    event_id: int | None
    channel: str
    kind: str
    event: str
    order_key: str
    target: str | None
    payload: str  # the exact JSON body to send
    status: NotificationStatus
    attempts: int
    created_at: float
    next_attempt_at: float
    sent_at: float | None
    last_error: str | None

    def to_dict(self, channel_url: str | None = None) -> dict[str, Any]:
        """The API view: URLs cut to scheme+host, the payload as JSON."""
        return {
            "id": self.id,
            "deploy_id": self.deploy_id,
            "event_id": self.event_id,
            "channel": self.channel,
            "type": self.kind,
            "event": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "next_attempt_at": self.next_attempt_at if self.status == "pending" else None,
            "sent_at": self.sent_at,
            "last_error": self.last_error,
            "endpoint": redact_url(self.target or channel_url),
            "payload": json.loads(self.payload),
        }
