"""Live updates: an in-process broadcaster, and a store wrapper that publishes every change.

Intake, the worker and the API all change state through the store, so wrapping the
store once (``PublishingStore``) announces new events and every deploy state change
without those modules knowing about subscribers. Messages feed ``/api/v1/stream`` (SSE).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..models import DeployRecord, DeployResult, PlannedDeploy, PushEvent
from ..store import RecordedEvent, Store

__all__ = ["Broadcaster", "Message", "PublishingStore"]


@dataclass(frozen=True)
class Message:
    id: int
    kind: str  # event | deploy | pause | resync
    data: dict[str, Any]

    def sse(self) -> str:
        return f"id: {self.id}\nevent: {self.kind}\ndata: {json.dumps(self.data)}\n\n"


class Broadcaster:
    """Fan messages out to subscribers' queues; ``publish`` may be called from any thread.

    A subscriber that falls behind gets one ``resync`` message instead of the ones it
    missed (the dashboard then reloads its state), so publishing never blocks.
    """

    def __init__(self, queue_size: int = 256):
        self.queue_size = queue_size
        self._subscribers: set[asyncio.Queue[Message]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        loop = self._loop
        if loop is None or not self._subscribers:
            return
        with self._lock:
            message = Message(next(self._ids), kind, {**data, "at": time.time()})
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fan_out(message)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
                loop.call_soon_threadsafe(self._fan_out, message)

    def _fan_out(self, message: Message) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(Message(message.id, "resync", {}))
            else:
                queue.put_nowait(message)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Message]]:
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Message] = asyncio.Queue(self.queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)


class PublishingStore:
    """Delegates to a store and publishes a message after each change it makes."""

    def __init__(self, inner: Store, broadcaster: Broadcaster):
        self.inner = inner
        self.broadcaster = broadcaster

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _deploy(self, deploy_id: int, **data: Any) -> None:
        self.broadcaster.publish("deploy", {"id": deploy_id, **data})

    def record_event(
        self,
        event: PushEvent,
        planned: list[PlannedDeploy],
        *,
        payload: str | None,
        now: float,
        dedup_window: float,
    ) -> RecordedEvent:
        (recorded,) = self.record_events(
            [(event, planned, payload)], now=now, dedup_window=dedup_window
        )
        return recorded

    def record_events(
        self,
        items: list[tuple[PushEvent, list[PlannedDeploy], str | None]],
        *,
        now: float,
        dedup_window: float,
    ) -> list[RecordedEvent]:
        many = getattr(self.inner, "record_events", None)
        if many is not None:
            results = list(many(items, now=now, dedup_window=dedup_window))
        else:
            results = [
                self.inner.record_event(e, p, payload=x, now=now, dedup_window=dedup_window)
                for e, p, x in items
            ]
        for (event, _, _), recorded in zip(items, results, strict=True):
            self.broadcaster.publish(
                "event",
                {
                    "id": recorded.event_id,
                    "status": recorded.status,
                    "repo": event.repo,
                    "tag": event.tag,
                    "deploys": recorded.deploy_ids,
                },
            )
        return results

    def claim(self, owner: str, lease_seconds: float, now: float) -> DeployRecord | None:
        job = self.inner.claim(owner, lease_seconds, now)
        if job is not None:
            self._deploy(job.id, status="running", target=job.target)
        return job

    def set_progress(self, deploy_id: int, progress: str) -> None:
        self.inner.set_progress(deploy_id, progress)
        self._deploy(deploy_id, progress=progress)

    def finish(
        self, deploy_id: int, owner: str, result: DeployResult, now: float, **kw: Any
    ) -> None:
        self.inner.finish(deploy_id, owner, result, now, **kw)  # kw: the outbox's builder
        self._deploy(deploy_id, status=str(result.status))

    def decide(self, deploy_id: int, approve: bool, by: str, now: float) -> bool:
        changed = bool(self.inner.decide(deploy_id, approve, by, now))
        if changed:
            self._deploy(deploy_id, status="queued" if approve else "rejected", by=by)
        return changed

    def await_approval(self, deploy_id: int, owner: str, reason: str) -> None:
        self.inner.await_approval(deploy_id, owner, reason)
        self._deploy(deploy_id, status="awaiting_approval", error=reason)

    def defer(self, deploy_id: int, owner: str, until: float, reason: str) -> None:
        self.inner.defer(deploy_id, owner, until, reason)
        self._deploy(deploy_id, status="queued", progress=reason)

    def retry_later(self, deploy_id: int, owner: str, not_before: float, error: str) -> None:
        self.inner.retry_later(deploy_id, owner, not_before, error)
        self._deploy(deploy_id, status="queued", error=error)

    def recover(self, now: float, *, all_running: bool = False) -> list[int]:
        ids = self.inner.recover(now, all_running=all_running)
        for deploy_id in ids:
            self._deploy(deploy_id, recovered=True)
        return ids

    def pause(self, key: str, *, reason: str | None, by: str | None, now: float) -> None:
        self.inner.pause(key, reason=reason, by=by, now=now)
        self.broadcaster.publish("pause", {"key": key, "paused": True})

    def resume(self, key: str) -> bool:
        released = self.inner.resume(key)
        self.broadcaster.publish("pause", {"key": key, "paused": False})
        return released

    def requeue(self, deploy_id: int, now: float) -> int | None:
        new_id = self.inner.requeue(deploy_id, now)
        if new_id is not None:
            self._deploy(new_id, status="queued", retry_of=deploy_id)
        return new_id
