"""The SQLite store's outbox: rows written with deploy results, read by the sender."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..models import DeployRecord
from ..notify.records import NewNotification, Notification, NotificationBuilder

if TYPE_CHECKING:
    from .sqlite import _Transaction

__all__ = ["NotificationBuilder", "SQLiteOutboxMixin"]

_COLUMNS = (
    "id, deploy_id, event_id, channel, kind, event, order_key, target, payload, status,"
    " attempts, created_at, next_attempt_at, sent_at, last_error"
)


class SQLiteOutboxMixin:
    """Mixed into ``SQLiteStore``; uses its ``_tx`` (one locked IMMEDIATE transaction)."""

    if TYPE_CHECKING:

        def _tx(self) -> _Transaction: ...

        def _get(self, db: sqlite3.Connection, deploy_id: int) -> DeployRecord | None: ...

    # ------------------------------------------------------------ writing

    def _write_outbox(
        self, db: sqlite3.Connection, deploy_id: int, builder: NotificationBuilder, now: float
    ) -> None:
        """Inside ``finish``'s transaction: build and insert the deploy's notifications."""
        record = self._get(db, deploy_id)
        if record is None:
            return
        rows = db.execute("SELECT id FROM deploys WHERE event_id = ?", (record.event_id,))
        ids = [r[0] for r in rows.fetchall()]
        siblings = [r for r in (self._get(db, i) for i in ids) if r is not None]
        self._insert(db, builder(record, siblings), now)

    @staticmethod
    def _insert(db: sqlite3.Connection, items: Iterable[NewNotification], now: float) -> None:
        for n in items:
            db.execute(
                "INSERT INTO outbox (deploy_id, event_id, channel, kind, event, order_key,"
                " target, payload, created_at, next_attempt_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
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
            with self._tx() as db:
                self._insert(db, items, now)

    # ------------------------------------------------------------ sending

    def due_notifications(
        self, now: float, limit: int, exclude: Iterable[int] = ()
    ) -> list[Notification]:
        """Pending messages that are due and first in line for their deploy and channel."""
        skip = sorted(set(exclude))
        marks = ",".join("?" * len(skip))
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM outbox o WHERE o.status = 'pending'"
                " AND o.next_attempt_at <= ?"
                + (f" AND o.id NOT IN ({marks})" if skip else "")
                + " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.order_key = o.order_key"
                "   AND p.status = 'pending' AND p.id < o.id)"
                " ORDER BY o.next_attempt_at, o.id LIMIT ?",
                (now, *skip, limit),
            ).fetchall()
        return [Notification(**dict(r)) for r in rows]

    def notification_attempted(
        self,
        notification_id: int,
        status: str,
        now: float,
        *,
        next_attempt_at: float | None = None,
        error: str | None = None,
    ) -> None:
        """Record one delivery attempt: ``sent``, ``pending`` (retry later) or ``dead``."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = coalesce(?, next_attempt_at),"
                " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                (status, error, next_attempt_at, status, now, notification_id),
            )

    def next_notification_due(self) -> float | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'"
            ).fetchone()
            return row[0]

    # ------------------------------------------------------------ reading

    def list_notifications(
        self, status: str | None = None, deploy_id: int | None = None, limit: int = 50
    ) -> list[Notification]:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if deploy_id is not None:
            where.append("deploy_id = ?")
            args.append(deploy_id)
        sql = f"SELECT {_COLUMNS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._tx() as db:
            rows = db.execute(sql, (*args, limit)).fetchall()
        return [Notification(**dict(r)) for r in rows]

    def notification_counts(self) -> dict[str, int]:
        with self._tx() as db:
            rows = db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        return {r[0]: r[1] for r in rows}
