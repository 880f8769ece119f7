"""What request handlers and background tasks share while the server runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import Config
from .discovery import ServiceIndex
from .intake.auth import BasicAuthenticator
from .intake.guard import WebhookGuard
from .intake.recorder import EventRecorder
from .metrics import Metrics
from .store import Store
from .web.events import Broadcaster

if TYPE_CHECKING:
    from .notify.outbox import OutboxSender
    from .worker import Worker

__all__ = ["AppContext"]


@dataclass
class AppContext:
    config: Config
    store: Store
    index: ServiceIndex
    metrics: Metrics = field(default_factory=Metrics)
    webhook_auth: BasicAuthenticator | None = None
    worker: Worker | None = None
    events: Broadcaster = field(default_factory=Broadcaster)  # live updates (SSE)
    outbox: OutboxSender | None = None
    guard: WebhookGuard | None = None
    recorder: EventRecorder = field(init=False)

    def __post_init__(self) -> None:
        self.recorder = EventRecorder(self.store, self.config.dedup_window)
