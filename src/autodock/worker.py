"""The deploy worker: claim (with a lease) → execute → record, N at a time.

Deploys to one target never run concurrently (the store's claim skips targets with a
running deploy), and the store supersedes queued deploys when a newer push arrives, so
a burst of pushes becomes at most one running and one queued deploy per target.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable

from .exceptions import DeployError, TransientDeployError
from .executors.base import Executor, ProgressCallback
from .groups import failed_sibling, rollback_siblings
from .models import DeployRecord, DeployResult, DeployStatus
from .notify.records import NotificationBuilder
from .reference import short_digest
from .store import Store
from .windows import window_hold

__all__ = ["Worker"]

log = logging.getLogger("autodock.worker")

Listener = Callable[[DeployRecord], Awaitable[None]]
_SYMBOLS = {
    DeployStatus.SUCCEEDED: "✔",
    DeployStatus.UNCHANGED: "=",
    DeployStatus.FAILED: "✖",
    DeployStatus.SUPERSEDED: "↷",
    DeployStatus.QUEUED: "↻",
}


class Worker:
    def __init__(
        self,
        store: Store,
        executors: dict[str, Executor],
        *,
        concurrency: int = 2,
        lease_seconds: float = 30.0,
        max_attempts: int = 5,
        retry_backoff: float = 2.0,
        max_backoff: float = 300.0,
        owner: str | None = None,
        exclusive_store: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.executors = executors
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.exclusive_store = exclusive_store
        self.clock = clock  # injectable: deploy windows are tested with a fake clock
        self.listeners: list[Listener] = []
        self.started_listeners: list[Listener] = []
        self.waiting_listeners: list[Callable[[list[int]], Awaitable[None]]] = []
        # Builds the outbox rows that commit in the same transaction as each result.
        self.outbox: NotificationBuilder | None = None
        self.active: dict[int, DeployRecord] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        recovered = await asyncio.to_thread(
            self.store.recover, self.clock(), all_running=self.exclusive_store
        )
        if recovered:
            log.warning("recovered %d deploy(s) interrupted by a previous stop", len(recovered))
        loops = [asyncio.create_task(self._loop(i)) for i in range(self.concurrency)]
        loops.append(asyncio.create_task(self._reaper()))
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _reaper(self) -> None:
        """Release leases of workers that died (another replica, or a hung loop)."""
        while not self._stopping:
            await asyncio.sleep(self.lease_seconds / 2)
            with contextlib.suppress(Exception):
                if await asyncio.to_thread(self.store.recover, self.clock()):
                    self.wake()

    async def _loop(self, index: int) -> None:
        while not self._stopping:
            try:
                job = await asyncio.to_thread(
                    self.store.claim, self.owner, self.lease_seconds, self.clock()
                )
            except Exception:
                log.exception("claiming work failed; retrying in 1s")
                await asyncio.sleep(1)
                continue
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=await self._idle_wait())
                continue
            self._wake.set()  # others may find more work to claim
            try:
                await self._execute(job)
            except Exception:  # the loop must outlive any one deploy; the reaper frees it
                log.exception("deploy %d could not be completed; its lease will expire", job.id)
                await asyncio.sleep(1)

    async def _idle_wait(self) -> float:
        due = await asyncio.to_thread(self.store.next_due)
        if due is None:
            return 1.0
        return min(1.0, max(0.05, due - self.clock()))

    async def _execute(self, job: DeployRecord) -> None:
        self.active[job.id] = job
        heartbeat = asyncio.create_task(self._heartbeat(job.id))
        started = time.monotonic()

        async def progress(text: str) -> None:
            job.progress = text
            try:
                await asyncio.to_thread(self.store.set_progress, job.id, text)
            except Exception as exc:  # progress is informative; the deploy goes on
                log.warning("deploy %d: progress not recorded: %s", job.id, exc)

        try:
            result = await self._outcome(job, progress)
            if result is None:
                return  # retried later
            if result.status is DeployStatus.AWAITING_APPROVAL:  # a policy wants a person
                reason = result.error or "needs approval"
                await self._store_write(job, self.store.await_approval, job.id, self.owner, reason)
                log.info("%s: awaiting approval: %s", job.target, reason)
                for waiting in self.waiting_listeners:
                    with contextlib.suppress(Exception):
                        await waiting([job.id])
                return
            extra = {"notifications": self.outbox} if self.outbox is not None else {}
            finish = functools.partial(self.store.finish, **extra)
            await self._store_write(job, finish, job.id, self.owner, result, self.clock())
            self._log_result(job, result, time.monotonic() - started)
            record = await asyncio.to_thread(self.store.get_deploy, job.id)
            if record is not None:
                if record.action.get("group"):
                    await self._release_group(record)
                for listener in self.listeners:
                    await _safely(listener, record)
        finally:
            heartbeat.cancel()
            self.active.pop(job.id, None)
            self.wake()

    async def _outcome(self, job: DeployRecord, progress: ProgressCallback) -> DeployResult | None:
        """Run the executor; None when the deploy was put back (retry, or window closed)."""
        held = window_hold(job.action.get("window"), self.clock())
        if held is not None:
            until, reason = held
            await self._store_write(job, self.store.defer, job.id, self.owner, until, reason)
            log.info("%s: %s", job.target, reason)
            return None
        if job.action.get("group"):
            broken = await asyncio.to_thread(failed_sibling, self.store, job)
            if broken is not None:
                return DeployResult(
                    DeployStatus.FAILED,
                    error=f"not deployed: {broken.target} failed in the same release "
                    f"(group {job.action['group']}, deploy {broken.id})",
                )
        for listener in self.started_listeners:  # only once the deploy really starts
            await _safely(listener, job)
        try:
            return await self.executors[job.kind].run(job, progress)
        except TransientDeployError as exc:
            if job.attempts < self.max_attempts:
                delay = min(self.max_backoff, self.retry_backoff * 2 ** (job.attempts - 1))
                delay *= random.uniform(0.8, 1.2)
                await self._store_write(
                    job, self.store.retry_later, job.id, self.owner, self.clock() + delay, str(exc)
                )
                log.warning(
                    "%s: %s; retry %d/%d in %.1fs",
                    job.target,
                    exc,
                    job.attempts + 1,
                    self.max_attempts,
                    delay,
                )
                return None
            return DeployResult(
                DeployStatus.FAILED, error=f"{exc} (gave up after {job.attempts} attempts)"
            )
        except DeployError as exc:
            return DeployResult(DeployStatus.FAILED, error=str(exc))
        except Exception as exc:  # a bug must not kill the worker or lose the deploy
            log.exception("deploy %d crashed", job.id)
            return DeployResult(DeployStatus.FAILED, error=f"internal error: {exc!r}")

    async def _release_group(self, record: DeployRecord) -> None:
        try:
            ids = await asyncio.to_thread(rollback_siblings, self.store, record, self.clock())
        except Exception:
            log.exception("could not queue the rollback of group %s", record.action["group"])
            return
        if ids:
            log.warning(
                "group %s: %s → rolling back deploy(s) %s",
                record.action["group"],
                record.status,
                ", ".join(map(str, ids)),
            )
            self.wake()

    async def _store_write(
        self, job: DeployRecord, write: Callable[..., object], *args: object
    ) -> None:
        """Record an outcome, waiting out a store that cannot write (disk full): the lease
        is still renewed meanwhile, so the outcome is not lost and the deploy not re-run."""
        delay = 0.5
        while True:
            try:
                await asyncio.to_thread(write, *args)
                return
            except Exception as exc:  # StoreError, or the driver's own (sqlite3 "disk full")
                log.error("deploy %d: cannot record its outcome (%s); retrying", job.id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _heartbeat(self, deploy_id: int) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    self.store.heartbeat, deploy_id, self.owner, self.clock() + self.lease_seconds
                )

    @staticmethod
    def _log_result(job: DeployRecord, result: DeployResult, seconds: float) -> None:
        symbol = _SYMBOLS.get(result.status, "?")
        old = short_digest(_digest(result.old_image))
        new = short_digest(_digest(result.new_image) or job.digest)
        line = f"{seconds:5.2f}s {symbol} {job.target} {job.repo}:{job.tag} {old} → {new}"
        level = logging.ERROR if result.status is DeployStatus.FAILED else logging.INFO
        log.log(
            level,
            line + (f" — {result.error.splitlines()[0]}" if result.error else ""),
            extra={"deploy_id": job.id, "status": str(result.status)},
        )


def _digest(image: str | None) -> str | None:
    return image.rpartition("@")[2] if image and "@" in image else None


async def _safely(listener: Listener, record: DeployRecord) -> None:
    try:
        await listener(record)
    except Exception:
        log.exception("deploy listener failed")
