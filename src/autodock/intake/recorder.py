"""Group commit for intake: requests that arrive while a transaction commits share the
next one, so a burst costs one fsync per batch instead of one per event. Every caller
still gets its answer only after its event is committed."""

from __future__ import annotations

import asyncio
import time

from ..models import PlannedDeploy, PushEvent
from ..store import RecordedEvent, Store

__all__ = ["EventRecorder"]

_Item = tuple[PushEvent, list[PlannedDeploy], str | None]


class EventRecorder:
    def __init__(self, store: Store, dedup_window: float, max_batch: int = 256):
        self.store = store
        self.dedup_window = dedup_window
        self.max_batch = max_batch
        self._pending: list[tuple[_Item, asyncio.Future[RecordedEvent]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(
        self, event: PushEvent, planned: list[PlannedDeploy], payload: str | None
    ) -> RecordedEvent:
        future: asyncio.Future[RecordedEvent] = asyncio.get_running_loop().create_future()
        self._pending.append(((event, planned, payload), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            items = [item for item, _ in batch]
            try:
                results = await asyncio.to_thread(self._write, items)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def _write(self, items: list[_Item]) -> list[RecordedEvent]:
        record_many = getattr(self.store, "record_events", None)
        now = time.time()
        if record_many is not None:
            return list(record_many(items, now=now, dedup_window=self.dedup_window))
        return [
            self.store.record_event(e, p, payload=x, now=now, dedup_window=self.dedup_window)
            for e, p, x in items
        ]
