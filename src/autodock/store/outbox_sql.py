"""The notification outbox, for every SQL store: rows written with deploy results, read
and claimed by the sender.

The SQL is the same for SQLite and PostgreSQL; a store mixes in :class:`OutboxMixin` and
supplies three things: ``_ph`` (its placeholder, ``?`` or ``%s``), ``_outbox_lock``
(the row-lock clause that ends a claiming SELECT: ``""`` where a transaction already
excludes every other writer, ``FOR UPDATE OF o SKIP LOCKED`` in PostgreSQL) and
``_outbox_tx()``, one transaction yielding an :class:`OutboxCursor`. Its
``_outbox_owner`` names the store instance (one per replica) in the leases.

Several replicas may share one database. ``due_notifications`` therefore *claims* what
it returns: it leases the rows to this store for ``lease`` seconds, so another replica
skips them until the attempt is recorded (``notification_attempted`` clears the lease)
or the lease expires (the replica died: the message is sent again, at least once). The
store that holds a lease still sees the row, exactly as without leases; the sender keeps
its own in-flight messages out with ``exclude``. A message is only due when no earlier
message of its ``order_key`` is pending, leased or not, so per deploy and channel the
messages still go out one at a time, in order, across all replicas.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from ..models import DeployRecord
from ..notify.records import NewNotification, Notification, NotificationBuilder

__all__ = [
    "DEFAULT_NOTIFICATION_LEASE",
    "NotificationBuilder",
    "OutboxCursor",
    "OutboxMixin",
    "new_outbox_owner",
]

# How long a claimed message stays invisible to other replicas: far above one attempt's
# HTTP timeout, so only a replica that died (or stalled that long) loses its claim.
DEFAULT_NOTIFICATION_LEASE = 300.0

_COLUMNS = (
    "id, deploy_id, event_id, channel, kind, event, order_key, target, payload, status,"
    " attempts, created_at, next_attempt_at, sent_at, last_error"
)


class OutboxCursor(Protocol):
    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one statement; its result rows (none for writes) keyed by column name."""
        ...


def new_outbox_owner() -> str:
    """A lease owner unique to one store instance: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OutboxMixin:
    """The outbox methods of a store; see the module docstring for the three hooks."""

    _ph: str
    _outbox_lock: str
    _outbox_owner: str

    if TYPE_CHECKING:

        def _outbox_tx(self) -> AbstractContextManager[OutboxCursor]: ...

    def _marks(self, n: int) -> str:
        return ",".join([self._ph] * n)

    # ------------------------------------------------------------ writing

    def _write_outbox(
        self,
        tx: OutboxCursor,
        deploy_id: int,
        builder: NotificationBuilder,
        now: float,
        get: Callable[[int], DeployRecord | None],
    ) -> None:
        """Inside ``finish``'s transaction: build and insert the deploy's notifications.
        ``get`` reads a deploy in that same transaction."""
        record = get(deploy_id)
        if record is None:
            return
        rows = tx.execute(
            f"SELECT id FROM deploys WHERE event_id = {self._ph} ORDER BY id", (record.event_id,)
        )
        siblings = [r for r in (get(row["id"]) for row in rows) if r is not None]
        self._insert(tx, builder(record, siblings), now)

    def _insert(self, tx: OutboxCursor, items: Iterable[NewNotification], now: float) -> None:
        for n in items:
            tx.execute(
                "INSERT INTO outbox (deploy_id, event_id, channel, kind, event, order_key,"
                f" target, payload, created_at, next_attempt_at) VALUES ({self._marks(10)})",
                (
                    n.deploy_id,
                    n.event_id,
                    n.channel,
                    n.kind,
                    n.event,
                    n.order_key,
                    n.target,
                    json.dumps(n.payload, separators=(",", ":"), ensure_ascii=False),
                    now,
                    now,
                ),
            )

    def enqueue_notifications(self, items: list[NewNotification], now: float) -> None:
        """Queue messages that announce no result (``deploy.started``, tests)."""
        if items:
            with self._outbox_tx() as tx:
                self._insert(tx, items, now)

    # ------------------------------------------------------------ sending

    def due_notifications(
        self,
        now: float,
        limit: int,
        exclude: Iterable[int] = (),
        *,
        lease: float = DEFAULT_NOTIFICATION_LEASE,
    ) -> list[Notification]:
        """Claim pending messages that are due and first in line for their deploy and
        channel, leasing them to this store for ``lease`` seconds."""
        p = self._ph
        skip = sorted(set(exclude))
        with self._outbox_tx() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM outbox o WHERE o.status = 'pending'"
                f" AND o.next_attempt_at <= {p}"
                f" AND (o.lease_until IS NULL OR o.lease_until <= {p} OR o.lease_owner = {p})"
                + (f" AND o.id NOT IN ({self._marks(len(skip))})" if skip else "")
                + " AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.order_key = o.order_key"
                "   AND e.status = 'pending' AND e.id < o.id)"
                f" ORDER BY o.next_attempt_at, o.id LIMIT {p}" + self._outbox_lock,
                (now, now, self._outbox_owner, *skip, limit),
            )
            if rows:
                ids = [r["id"] for r in rows]
                tx.execute(
                    f"UPDATE outbox SET lease_owner = {p}, lease_until = {p}"
                    f" WHERE id IN ({self._marks(len(ids))})",
                    (self._outbox_owner, now + lease, *ids),
                )
        return [Notification(**r) for r in rows]

    def notification_attempted(
        self,
        notification_id: int,
        status: str,
        now: float,
        *,
        next_attempt_at: float | None = None,
        error: str | None = None,
    ) -> None:
        """Record one delivery attempt: ``sent``, ``pending`` (retry later) or ``dead``;
        the lease ends. Ignored when another store has claimed the message since (this
        store's lease expired): the attempt in flight there is the one that counts."""
        p = self._ph
        with self._outbox_tx() as tx:
            tx.execute(
                f"UPDATE outbox SET status = {p}, attempts = attempts + 1, last_error = {p},"
                f" next_attempt_at = coalesce({p}, next_attempt_at),"
                f" sent_at = coalesce({p}, sent_at), lease_owner = NULL, lease_until = NULL"
                f" WHERE id = {p} AND (lease_owner IS NULL OR lease_owner = {p})",
                (
                    status,
                    error,
                    next_attempt_at,
                    now if status == "sent" else None,
                    notification_id,
                    self._outbox_owner,
                ),
            )

    def next_notification_due(self) -> float | None:
        with self._outbox_tx() as tx:
            (row,) = tx.execute(
                "SELECT min(next_attempt_at) AS due FROM outbox WHERE status = 'pending'"
            )
        return row["due"]

    # ------------------------------------------------------------ reading

    def list_notifications(
        self, status: str | None = None, deploy_id: int | None = None, limit: int = 50
    ) -> list[Notification]:
        p = self._ph
        where: list[str] = []
        args: list[Any] = []
        if status:
            where.append(f"status = {p}")
            args.append(status)
        if deploy_id is not None:
            where.append(f"deploy_id = {p}")
            args.append(deploy_id)
        sql = f"SELECT {_COLUMNS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id DESC LIMIT {p}"
        with self._outbox_tx() as tx:
            rows = tx.execute(sql, (*args, limit))
        return [Notification(**r) for r in rows]

    def notification_counts(self) -> dict[str, int]:
        with self._outbox_tx() as tx:
            rows = tx.execute("SELECT status, count(*) AS n FROM outbox GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}
