"""The embedded store: one SQLite file in WAL mode, fsynced on every commit.

All methods are synchronous and thread-safe (one connection behind a lock); the
server calls them from worker threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..exceptions import StoreError, StoreUnavailable
from ..models import (
    DeployRecord,
    DeployResult,
    DeployStatus,
    EventStatus,
    PlannedDeploy,
    PushEvent,
)
from .base import (
    AWAIT_APPROVAL_SQL,
    DECIDE_SQL,
    DEFER_SQL,
    NOT_HELD_SQL,
    PAUSE_SQL,
    DeployFilter,
    RecordedEvent,
    decision_args,
)
from .migrations import migration_scripts
from .outbox_sql import NotificationBuilder, OutboxMixin, new_outbox_owner
from .rows import (
    DEPLOY_COLUMNS,
    INSERT_DEPLOY_SQL,
    INSERT_EVENT_SQL,
    SUPERSEDE_SQL,
    bounded,
    deploy_from_row,
    deploy_row,
    event_row,
    planned_from_row,
    recovery,
    supersede_args,
)

__all__ = ["SQLiteStore"]


class SQLiteStore(OutboxMixin):
    # Outbox dialect: every transaction is IMMEDIATE under the store's lock, so a claim
    # needs no row locks.
    _ph = "?"
    _outbox_lock = ""

    def __init__(self, path: str | os.PathLike[str]):
        self._outbox_owner = new_outbox_owner()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            # Two connections, one lock. Intake commits with synchronous=FULL: an
            # acknowledged event survives power loss. Deploy bookkeeping commits with
            # NORMAL: it survives a crash of autodock (WAL), and after a power loss the
            # worst case is a deploy re-checked by recover(); it spares the disk an fsync
            # per state change, which would otherwise slow intake down.
            self._db = self._connect("FULL")
            self._work_db = self._connect("NORMAL")
            # Reads have their own connection: in WAL mode they see the last commit and
            # never wait for (or hold up) a writer.
            self._read_db = self._connect("NORMAL")
            self._read_lock = threading.Lock()
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open store {self.path}: {exc}") from exc

    # ------------------------------------------------------------ plumbing

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=10000")
        return db

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL)"
            )
            done = {r[0] for r in self._db.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in migration_scripts():
                if version in done:
                    continue
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _split_sql(sql):
                        self._db.execute(statement)
                    self._db.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        (version, name),
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            try:
                yield self._read_db
            finally:
                if self._read_db.in_transaction:
                    self._read_db.execute("ROLLBACK")

    def _tx(self, *, durable: bool = False) -> _Transaction:
        return _Transaction(self._db if durable else self._work_db, self._lock)

    @contextmanager
    def _outbox_tx(self) -> Iterator[_Cursor]:
        with self._tx() as db:
            yield _Cursor(db)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._work_db.close()
        with self._read_lock:
            self._read_db.close()

    # ------------------------------------------------------------ intake

    def record_event(
        self,
        event: PushEvent,
        planned: list[PlannedDeploy],
        *,
        payload: str | None,
        now: float,
        dedup_window: float,
    ) -> RecordedEvent:
        return self.record_events([(event, planned, payload)], now=now, dedup_window=dedup_window)[
            0
        ]

    def record_events(
        self,
        items: list[tuple[PushEvent, list[PlannedDeploy], str | None]],
        *,
        now: float,
        dedup_window: float,
    ) -> list[RecordedEvent]:
        """Record several events in one transaction: one fsync for a whole batch."""
        try:
            with self._tx(durable=True) as db:
                return [
                    self._record_one(db, event, planned, payload, now, dedup_window)
                    for event, planned, payload in items
                ]
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"store cannot record events: {exc}") from exc

    def _record_one(
        self,
        db: sqlite3.Connection,
        event: PushEvent,
        planned: list[PlannedDeploy],
        payload: str | None,
        now: float,
        dedup_window: float,
    ) -> RecordedEvent:
        duplicate = self._find_duplicate(db, event, now, dedup_window)
        if duplicate is not None:
            return RecordedEvent(
                duplicate["id"], str(EventStatus.DUPLICATE), json.loads(duplicate["matched_rules"])
            )
        rules = sorted({p.rule for p in planned})
        status = EventStatus.ACCEPTED if planned else EventStatus.IGNORED
        cur = db.execute(
            INSERT_EVENT_SQL,
            event_row(event, status, rules, payload, now),
        )
        event_id = int(cur.lastrowid or 0)
        deploy_ids = [self._enqueue(db, event_id, p, now) for p in planned]
        return RecordedEvent(event_id, str(status), rules, deploy_ids)

    @staticmethod
    def _find_duplicate(
        db: sqlite3.Connection, event: PushEvent, now: float, window: float
    ) -> sqlite3.Row | None:
        if event.delivery_id:
            row = db.execute(
                "SELECT id, matched_rules FROM events WHERE delivery_id = ?", (event.delivery_id,)
            ).fetchone()
            if row is not None:
                return row
        if window <= 0 or not (event.digest or event.pushed_at):
            return None
        return db.execute(
            "SELECT id, matched_rules FROM events WHERE repo = ? AND tag = ?"
            " AND coalesce(registry, '') = ? AND received_at >= ? AND status != 'duplicate'"
            " AND ((? IS NOT NULL AND digest = ?) OR (? IS NOT NULL AND pushed_at = ?))"
            " ORDER BY id DESC LIMIT 1",
            (
                event.repo,
                event.tag,
                event.registry or "",
                now - window,
                event.digest,
                event.digest,
                event.pushed_at,
                event.pushed_at,
            ),
        ).fetchone()

    @staticmethod
    def _enqueue(db: sqlite3.Connection, event_id: int, p: PlannedDeploy, now: float) -> int:
        cur = db.execute(
            INSERT_DEPLOY_SQL,
            deploy_row(event_id, p, now),
        )
        new_id = int(cur.lastrowid or 0)
        db.execute(SUPERSEDE_SQL, supersede_args(new_id, now, p.target_key))
        return new_id

    # ------------------------------------------------------------ queue

    def claim(self, owner: str, lease_seconds: float, now: float) -> DeployRecord | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT d.id FROM deploys d INDEXED BY deploys_queue"
                " WHERE d.status = 'queued' AND d.not_before <= ?"
                " AND NOT EXISTS (SELECT 1 FROM deploys r WHERE r.target_key = d.target_key"
                "   AND r.status = 'running')" + NOT_HELD_SQL + " ORDER BY d.id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            # The try counter goes up before the work starts, so a crash still counts.
            db.execute(
                "UPDATE deploys SET status = 'running', attempts = attempts + 1,"
                " lease_owner = ?, lease_until = ?, started_at = coalesce(started_at, ?),"
                " error = NULL WHERE id = ?",
                (owner, now + lease_seconds, now, row["id"]),
            )
            return self._get(db, row["id"])

    def decide(self, deploy_id: int, approve: bool, by: str, now: float) -> bool:
        with self._tx() as db:
            cur = db.execute(DECIDE_SQL, decision_args(deploy_id, approve, by, now))
            return cur.rowcount == 1

    def defer(self, deploy_id: int, owner: str, until: float, reason: str) -> None:
        with self._tx() as db:
            db.execute(DEFER_SQL, (until, reason, deploy_id, owner))

    def await_approval(self, deploy_id: int, owner: str, reason: str) -> None:
        with self._tx() as db:
            db.execute(AWAIT_APPROVAL_SQL, ("awaiting approval", reason, deploy_id, owner))

    def heartbeat(self, deploy_id: int, owner: str, lease_until: float) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deploys SET lease_until = ? WHERE id = ? AND lease_owner = ?"
                " AND status = 'running'",
                (lease_until, deploy_id, owner),
            )
            return cur.rowcount == 1

    def set_progress(self, deploy_id: int, progress: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE deploys SET progress = ? WHERE id = ?", (progress, deploy_id))

    def finish(
        self,
        deploy_id: int,
        owner: str,
        result: DeployResult,
        now: float,
        notifications: NotificationBuilder | None = None,
    ) -> None:
        """Record the result; ``notifications`` builds outbox rows committed with it."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deploys SET status = ?, old_image = coalesce(?, old_image),"
                " new_image = coalesce(?, new_image), output = ?, error = ?, finished_at = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (
                    str(result.status),
                    result.old_image,
                    result.new_image,
                    bounded(result.output),
                    bounded(result.error),
                    now,
                    deploy_id,
                    owner,
                ),
            )
            if notifications is not None and cur.rowcount == 1:
                self._write_outbox(
                    _Cursor(db), deploy_id, notifications, now, lambda i: self._get(db, i)
                )

    def retry_later(self, deploy_id: int, owner: str, not_before: float, error: str) -> None:
        with self._tx() as db:
            # A newer push for the target may be queued already; then this one is superseded.
            newer = db.execute(
                "SELECT n.id FROM deploys n JOIN deploys d ON n.target_key = d.target_key"
                " WHERE d.id = ? AND n.id > d.id AND n.status = 'queued' ORDER BY n.id DESC",
                (deploy_id,),
            ).fetchone()
            status = DeployStatus.SUPERSEDED if newer else DeployStatus.QUEUED
            db.execute(
                "UPDATE deploys SET status = ?, not_before = ?, error = ?, lease_owner = NULL,"
                " lease_until = NULL, superseded_by = ?, finished_at = ? WHERE id = ?"
                " AND lease_owner = ?",
                (
                    str(status),
                    not_before,
                    error,
                    newer["id"] if newer else None,
                    time.time() if newer else None,
                    deploy_id,
                    owner,
                ),
            )

    def recover(self, now: float, *, all_running: bool = False) -> list[int]:
        """Release deploys whose owner stopped renewing its lease.

        Service updates are idempotent (the digest check turns a repeat into
        ``unchanged``), so they go back to the queue. A command may already have done
        its work, so it is only re-run when its rule says ``idempotent: true``.
        """
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, kind, action FROM deploys WHERE status = 'running'"
                + ("" if all_running else " AND lease_until < ?"),
                () if all_running else (now,),
            ).fetchall()
            for row in rows:
                statement, args = recovery(row, now)
                db.execute(statement, args)
            return [r["id"] for r in rows]

    def count_queued(self, source: str) -> int:
        """Deploys waiting to run that pushes from ``source`` (dockerhub, registry…) queued."""
        with self._read() as db:
            row = db.execute(
                "SELECT count(*) FROM deploys d JOIN events e ON e.id = d.event_id"
                " WHERE d.status = 'queued' AND e.source = ?",
                (source,),
            ).fetchone()
            return int(row[0])

    def next_due(self) -> float | None:
        with self._read() as db:
            row = db.execute(
                "SELECT min(not_before) FROM deploys d WHERE status = 'queued'" + NOT_HELD_SQL
            ).fetchone()
            return row[0]

    # ------------------------------------------------------------ reading

    def _get(self, db: sqlite3.Connection, deploy_id: int) -> DeployRecord | None:
        row = db.execute(
            f"SELECT {DEPLOY_COLUMNS} FROM deploys d JOIN events e ON e.id = d.event_id"
            " WHERE d.id = ?",
            (deploy_id,),
        ).fetchone()
        return deploy_from_row(row) if row else None

    def get_deploy(self, deploy_id: int) -> DeployRecord | None:
        with self._read() as db:
            return self._get(db, deploy_id)

    def list_deploys(self, flt: DeployFilter) -> list[DeployRecord]:
        where, args = flt.where("?")
        sql = f"SELECT {DEPLOY_COLUMNS} FROM deploys d JOIN events e ON e.id = d.event_id"
        sql += where
        sql += " ORDER BY d.id DESC LIMIT ?"
        args.append(flt.limit)
        with self._read() as db:
            return [deploy_from_row(r) for r in db.execute(sql, args)]

    def list_events(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT id, source, registry, repo, tag, digest, pusher, received_at, status,"
                " matched_rules FROM events ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        out = []
        for r in rows:
            item = dict(r)
            item["matched_rules"] = json.loads(item["matched_rules"])
            out.append(item)
        return out

    def counts(self) -> dict[str, int]:
        with self._read() as db:
            rows = db.execute("SELECT status, count(*) FROM deploys GROUP BY status").fetchall()
            out = {f"deploys_{r[0]}": r[1] for r in rows}
            out["events"] = db.execute("SELECT count(*) FROM events").fetchone()[0]
            return out

    # ------------------------------------------------------------ pauses and manual actions

    def pause(self, key: str, *, reason: str | None, by: str | None, now: float) -> None:
        """Hold queued deploys of ``rule:NAME`` or ``service:NAME`` (a target key)."""
        with self._tx() as db:
            db.execute(PAUSE_SQL, (key, reason, by, now))

    def resume(self, key: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM pauses WHERE key = ?", (key,)).rowcount == 1

    def list_pauses(self) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT key, reason, paused_by, paused_at FROM pauses ORDER BY key"
            ).fetchall()
            return [dict(r) for r in rows]

    def requeue(self, deploy_id: int, now: float) -> int | None:
        """Queue the deploy's target again for its event (a retry); the new deploy's id."""
        with self._tx() as db:
            row = db.execute(
                "SELECT event_id, rule, kind, target, target_key, action FROM deploys WHERE id = ?",
                (deploy_id,),
            ).fetchone()
            if row is None:
                return None
            planned = planned_from_row(row)
            return self._enqueue(db, row["event_id"], planned, now)

    def last_successes(self) -> dict[str, float]:
        """Per target: when its last successful deploy finished."""
        with self._read() as db:
            rows = db.execute(
                "SELECT target, max(finished_at) FROM deploys WHERE status = 'succeeded'"
                " GROUP BY target"
            ).fetchall()
            return {r[0]: r[1] for r in rows if r[1] is not None}


def _split_sql(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class _Cursor:
    """The outbox's view of a connection inside a transaction (see ``OutboxCursor``)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute(sql, args).fetchall()]


class _Transaction:
    """``with store._tx() as db``: one IMMEDIATE transaction under the store's lock."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock):
        self._db = db
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise StoreUnavailable(f"store is not writable: {exc}") from exc
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as err:
                    if self._db.in_transaction:  # SQLITE_FULL/IOERR roll back by themselves
                        self._db.execute("ROLLBACK")
                    raise StoreUnavailable(f"store could not commit: {err}") from err
            elif self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error as err:  # the original error matters more
                    raise StoreError(f"rollback failed: {err}") from None
        finally:
            self._lock.release()
