"""The outbox sender: a background task that delivers queued notifications.

Rows are written by the worker in the transaction that records a deploy result, so a
result never exists without its messages, and a restart loses nothing: anything still
``pending`` is sent when the server comes back (delivery is at least once; receivers
can de-duplicate on ``X-Autodock-Delivery``). A slow or dead endpoint only delays its
own messages: each attempt has a timeout and runs in its own task, apart from deploys.
Replicas sharing a database each run a sender: ``due_notifications`` claims (leases) what
it returns, so a message in flight at one replica is not handed to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from ..config import Config, NotifierConfig
from ..models import DeployRecord
from .delivery import Outcome, scrub
from .hub_callback import send_hub_callback
from .messages import (
    approval_notifications,
    build_notifications,
    hub_channel,
    started_notifications,
)
from .records import NewNotification, Notification
from .slack import send_slack
from .webhook import send_webhook

if TYPE_CHECKING:
    from ..context import AppContext
    from ..metrics import Metrics
    from ..worker import Worker

__all__ = ["OutboxSender", "OutboxStore", "attach_outbox", "channel_endpoint", "deliver"]

log = logging.getLogger("autodock.notify")


class OutboxStore(Protocol):
    def enqueue_notifications(self, items: list[NewNotification], now: float) -> None: ...

    def due_notifications(
        self, now: float, limit: int, exclude: Any = (), *, lease: float = ...
    ) -> list[Notification]:
        """Claim due messages: other replicas on the same database skip them until the
        attempt is recorded or ``lease`` seconds have passed."""
        ...

    def notification_attempted(
        self,
        notification_id: int,
        status: str,
        now: float,
        *,
        next_attempt_at: float | None = None,
        error: str | None = None,
    ) -> None: ...

    def next_notification_due(self) -> float | None: ...

    def notification_counts(self) -> dict[str, int]: ...


def _notifier(config: Config, n: Notification) -> NotifierConfig | None:
    if n.kind == "dockerhub":
        hub = hub_channel(config)
        return hub[1] if hub is not None else NotifierConfig(type="dockerhub")
    cfg = config.notifiers.get(n.channel)
    return cfg if cfg is not None and cfg.type == n.kind else None


def channel_endpoint(cfg: NotifierConfig | None) -> str | None:
    """Where a channel posts, for redacted display (never logged or shown in full)."""
    if cfg is None:
        return None
    try:
        if cfg.type == "slack" and not cfg.resolve_url():
            return cfg.api_url
        return cfg.resolve_url()
    except Exception:  # an unreadable url_file must not break the API
        return None


def _secrets(cfg: NotifierConfig | None, n: Notification) -> list[str | None]:
    out: list[str | None] = [n.target]
    if cfg is not None:
        with contextlib.suppress(Exception):
            out += [cfg.resolve_url(), cfg.resolve_token(), cfg.resolve_secret()]
    return out


async def deliver(
    client: httpx.AsyncClient, config: Config, n: Notification, cfg: NotifierConfig | None
) -> Outcome:
    """One attempt to send ``n``; never raises, never returns a secret in its error."""
    if cfg is None:
        return Outcome.permanent(f"notifier {n.channel!r} is no longer configured")
    timeout = cfg.timeout or config.outbox.timeout
    try:
        if n.kind == "slack":
            outcome = await send_slack(client, cfg, n.payload, timeout)
        elif n.kind == "webhook":
            outcome = await send_webhook(client, cfg, n.event, str(n.id), n.payload, timeout)
        elif n.kind == "dockerhub":
            outcome = await send_hub_callback(client, n.target, n.payload, timeout)
        else:
            outcome = Outcome.permanent(f"unknown notifier type {n.kind!r}")
    except Exception as exc:  # a bug in one channel must not stop the sender
        outcome = Outcome.transient(f"internal error: {type(exc).__name__}: {exc}")
    if outcome.error:
        outcome = Outcome(
            outcome.sent, outcome.retry, outcome.retry_after, scrub(outcome.error, _secrets(cfg, n))
        )
    return outcome


class OutboxSender:
    def __init__(
        self,
        store: OutboxStore,
        config: Config,
        metrics: Metrics | None = None,
        client: httpx.AsyncClient | None = None,
    ):
        self.store = store
        self.config = config
        self.settings = config.outbox
        self.metrics = metrics
        self._client = client
        self._wake = asyncio.Event()
        self.queued_more = False  # set when a finished deploy wrote outbox rows
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        # Claims outlive the slowest attempt several times over: only a replica that
        # died (or stalled that long) hands its messages to the others.
        timeouts = [c.timeout for c in config.notifiers.values() if c.timeout]
        self.lease = max(60.0, 3 * max([self.settings.timeout, *timeouts]))

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # ------------------------------------------------------------ worker hooks

    async def on_started(self, record: DeployRecord) -> None:
        items = started_notifications(self.config, record)
        if items:
            await asyncio.to_thread(self.store.enqueue_notifications, items, time.time())
            self.wake()

    async def on_awaiting_approval(self, deploy_ids: list[int]) -> None:
        """Tell people a push waits for them (called by intake after it recorded one)."""
        items = []
        for deploy_id in deploy_ids:
            record = await asyncio.to_thread(self.store.get_deploy, deploy_id)
            if record is not None and record.status.value == "awaiting_approval":
                items += approval_notifications(self.config, record)
        if items:
            await asyncio.to_thread(self.store.enqueue_notifications, items, time.time())
            self.wake()

    async def on_finished(self, record: DeployRecord) -> None:
        # Rows were committed with the result: send them now. Most results carry none,
        # and waking for those would only make the sender poll the store in a loop.
        if self.queued_more:
            self.queued_more = False
            self.wake()

    # ------------------------------------------------------------ loop

    async def run(self) -> None:
        client = self._client or httpx.AsyncClient(follow_redirects=False)
        try:
            while not self._stopping:
                try:
                    await self._tick(client)
                except Exception:
                    log.exception("notification sender failed; retrying in 1s")
                    await asyncio.sleep(1)
        finally:
            for task in self._in_flight.values():
                task.cancel()
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
            if self._client is None:
                await client.aclose()

    async def _tick(self, client: httpx.AsyncClient) -> None:
        self._wake.clear()
        room = self.settings.concurrency - len(self._in_flight)
        if room > 0:
            due = await asyncio.to_thread(
                functools.partial(self.store.due_notifications, lease=self.lease),
                time.time(),
                room,
                list(self._in_flight),
            )
            for n in due:
                self._in_flight[n.id] = asyncio.create_task(self._attempt(client, n))
        await self._update_gauges()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=await self._idle_wait())

    async def _idle_wait(self) -> float:
        due = await asyncio.to_thread(self.store.next_notification_due)
        if due is None:
            return 1.0
        return min(1.0, max(0.05, due - time.time()))

    async def _update_gauges(self) -> None:
        if self.metrics is None:
            return
        counts = await asyncio.to_thread(self.store.notification_counts)
        for status in ("pending", "dead"):
            self.metrics.notifications_queued.labels(status).set(counts.get(status, 0))

    async def _attempt(self, client: httpx.AsyncClient, n: Notification) -> None:
        try:
            cfg = _notifier(self.config, n)
            outcome = await deliver(client, self.config, n, cfg)
            await self._record(n, outcome)
        except Exception:
            log.exception("notification %d: recording the attempt failed", n.id)
        finally:
            self._in_flight.pop(n.id, None)
            self.wake()

    def _delay(self, attempts: int, outcome: Outcome) -> float:
        if outcome.retry_after is not None:
            return outcome.retry_after  # the receiver said when; sooner would be refused
        base = min(self.settings.max_backoff, self.settings.backoff * 2 ** (attempts - 1))
        return base * random.uniform(0.5, 1.0)  # jitter: retries from many deploys spread out

    async def _record(self, n: Notification, outcome: Outcome) -> None:
        now = time.time()
        attempts = n.attempts + 1
        what = f"{n.channel}: {n.event} of deploy {n.deploy_id} (message {n.id})"
        if outcome.sent:
            await asyncio.to_thread(self.store.notification_attempted, n.id, "sent", now)
            self._count(n.channel, "sent")
            log.info("notified %s", what)
            return
        delay = self._delay(attempts, outcome)
        too_old = now + delay - n.created_at > self.settings.max_age
        if not outcome.retry or too_old:
            reason = outcome.error if not outcome.retry else f"gave up: {outcome.error}"
            await asyncio.to_thread(
                self.store.notification_attempted, n.id, "dead", now, error=reason
            )
            self._count(n.channel, "dead")
            log.error("notification dead after %d attempt(s), %s — %s", attempts, what, reason)
            return
        await asyncio.to_thread(
            self.store.notification_attempted,
            n.id,
            "pending",
            now,
            next_attempt_at=now + delay,
            error=outcome.error,
        )
        self._count(n.channel, "retry")
        log.warning("notifying %s failed (%s); retry in %.1fs", what, outcome.error, delay)

    def _count(self, channel: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(channel, result).inc()


def attach_outbox(ctx: AppContext, worker: Worker) -> OutboxSender | None:
    """Wire notifications into a server: the worker writes outbox rows with each result
    and the sender (started by the server's lifespan) delivers them."""
    if not hasattr(ctx.store, "due_notifications"):
        log.warning("this store has no notification outbox; notifications are off")
        return None
    sender = OutboxSender(ctx.store, ctx.config, ctx.metrics)  # type: ignore[arg-type]
    build = build_notifications(ctx.config)

    def build_and_note(record: DeployRecord, siblings: list[DeployRecord]) -> list[Any]:
        items = build(record, siblings)
        if items:
            sender.queued_more = True  # runs in the store's thread; read by on_finished
        return items

    worker.outbox = build_and_note
    worker.started_listeners.append(sender.on_started)
    worker.listeners.append(sender.on_finished)
    worker.waiting_listeners.append(sender.on_awaiting_approval)
    return sender
