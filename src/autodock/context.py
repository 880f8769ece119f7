"""What request handlers and background tasks share while the server runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import Config
from .discovery import ServiceIndex
from .intake.auth import BasicAuthenticator
from .metrics import Metrics
from .store import Store
from .web.events import Broadcaster

if TYPE_CHECKING:
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
