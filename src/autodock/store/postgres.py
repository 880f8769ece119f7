"""The shared store: PostgreSQL, for several autodock replicas working one queue.

Same schema (see ``migrations/postgres``), methods and semantics as
:class:`~autodock.store.sqlite.SQLiteStore`. What SQLite gets from its single writer,
this store gets from PostgreSQL locks:

* ``record_event`` takes transaction-scoped advisory locks on the push (for dedup) and on
  every target it queues to (for coalescing), in one global order, before it allocates
  ids; so per target, event and deploy ids grow in commit order and an older queued
  deploy is always superseded atomically.
* ``claim`` picks the oldest due queued deploy whose target has nothing running and no
  older due queued deploy, with ``FOR UPDATE SKIP LOCKED``; the partial unique index
  ``deploys_one_running`` makes a second running deploy of a target impossible (a
  conflicting claim rolls back and tries again).
* ``retry_later`` and ``recover`` lock the target too, so a deploy going back to the
  queue and a newer push for its target never both stay queued out of order.
* The notification outbox (``outbox_sql.OutboxMixin``, the same SQL as SQLite's) claims
  due messages with ``FOR UPDATE SKIP LOCKED`` and leases them to the replica that
  sends them, so no two replicas send one message at the same time.

Leases expire as in SQLite: any replica's ``recover(now)`` releases them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ..exceptions import ConfigError, StoreError, StoreUnavailable
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
from .migrations import migration_scripts, split_statements
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

__all__ = ["PASSWORD_FILE_ENV", "PostgresStore"]

log = logging.getLogger("autodock.store.postgres")

T = TypeVar("T")
Cursor = psycopg.Cursor[dict[str, Any]]

PASSWORD_FILE_ENV = "AUTODOCK_DB_PASSWORD_FILE"  # noqa: S105 - a variable name
MIGRATION_LOCK = 0x6175746F646F636B  # "autodock"
RETRIES = 8
_RETRYABLE = (errors.UniqueViolation, errors.DeadlockDetected, errors.SerializationFailure)


def _lock_id(name: str) -> int:
    """A stable signed 64-bit advisory lock id for ``name``."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock(cur: Cursor, names: Iterable[str]) -> None:
    """Take the advisory locks of ``names`` until commit, always in ascending id order
    (every caller uses that order, so two transactions never wait on each other in a
    cycle)."""
    for lock_id in sorted({_lock_id(n) for n in names}):
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id,))


def _push_lock(event: PushEvent) -> str:
    return f"push:{event.registry or ''}/{event.repo}:{event.tag}"


def _target_lock(target_key: str) -> str:
    return f"target:{target_key}"


def _redact(url: str) -> str:
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    host = info.get("host", "localhost")
    port = info.get("port", "5432")
    return f"postgresql://{host}:{port}/{info.get('dbname', '')}"


def _password_from_file(url: str) -> dict[str, str]:
    """The password from ``$AUTODOCK_DB_PASSWORD_FILE`` (a Docker secret) when the URL
    carries none; libpq's own ``PGPASSWORD``/``PGPASSFILE`` work as well."""
    path = os.environ.get(PASSWORD_FILE_ENV)
    if not path or psycopg.conninfo.conninfo_to_dict(url).get("password"):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            return {"password": handle.read().rstrip("\r\n")}
    except OSError as exc:
        raise ConfigError(f"{PASSWORD_FILE_ENV}: cannot read {path}: {exc.strerror}") from exc


class PostgresStore(OutboxMixin):
    # Outbox dialect: replicas claim due messages concurrently; rows another replica is
    # claiming right now are skipped, not waited for.
    _ph = "%s"
    _outbox_lock = " FOR UPDATE OF o SKIP LOCKED"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        checkout_timeout: float = 5.0,
    ):
        """``connect_timeout`` bounds opening the store; ``checkout_timeout`` how long one
        operation waits for a working connection before it reports StoreUnavailable."""
        self.url = url
        self.name = _redact(url)
        self._outbox_owner = new_outbox_owner()
        self._timeout = min(checkout_timeout, connect_timeout)
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, int(connect_timeout)),
                "application_name": "autodock",
                **_password_from_file(url),
            },
            check=ConnectionPool.check_connection,
            timeout=self._timeout,
            open=False,
            name="autodock",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
            self._migrate()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            self._pool.close()
            raise StoreUnavailable(f"cannot open store {self.name}: {exc}") from exc
        except BaseException:
            self._pool.close()
            raise

    # ------------------------------------------------------------ plumbing

    def _migrate(self) -> None:
        """Apply missing migrations in one transaction under an advisory lock, so
        replicas starting together migrate once and never see a half-made schema."""
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL)"
            )
            cur.execute("SELECT version FROM schema_migrations")
            done = {r["version"] for r in cur.fetchall()}
            for version, name, sql in migration_scripts("postgres"):
                if version in done:
                    continue
                log.info("applying migration %s to %s", name, self.name)
                for statement in split_statements(sql):
                    cur.execute(statement)  # type: ignore[arg-type]
                cur.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (version, name),
                )

    def _run(self, what: str, body: Callable[[Cursor], T]) -> T:
        """Run ``body`` in one transaction; retry it on lock conflicts (the unique running
        index, deadlocks), report an unreachable database as ``StoreUnavailable``."""
        for attempt in range(RETRIES):
            try:
                with (
                    self._pool.connection(timeout=self._timeout) as conn,
                    conn.transaction(),
                    conn.cursor() as cur,
                ):
                    return body(cur)
            except _RETRYABLE as exc:
                if attempt == RETRIES - 1:
                    raise StoreError(f"store could not {what}: {exc}") from exc
                time.sleep(0.005 * (attempt + 1))
            except (PoolTimeout, psycopg.OperationalError) as exc:
                raise StoreUnavailable(f"store cannot {what}: {exc}") from exc
            except psycopg.Error as exc:
                raise StoreError(f"store could not {what}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _outbox_tx(self) -> Iterator[_Cursor]:
        """One transaction for the outbox, with ``_run``'s error mapping (no retries:
        nothing the outbox does waits on a lock in a cycle)."""
        try:
            with (
                self._pool.connection(timeout=self._timeout) as conn,
                conn.transaction(),
                conn.cursor() as cur,
            ):
                yield _Cursor(cur)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailable(f"store cannot reach the outbox: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"store could not update the outbox: {exc}") from exc

    def close(self) -> None:
        self._pool.close()

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
        def body(cur: Cursor) -> RecordedEvent:
            _lock(cur, [_push_lock(event), *(_target_lock(p.target_key) for p in planned)])
            duplicate = self._find_duplicate(cur, event, now, dedup_window)
            if duplicate is not None:
                return RecordedEvent(
                    duplicate["id"],
                    str(EventStatus.DUPLICATE),
                    json.loads(duplicate["matched_rules"]),
                )
            rules = sorted({p.rule for p in planned})
            status = EventStatus.ACCEPTED if planned else EventStatus.IGNORED
            cur.execute(
                _pg(INSERT_EVENT_SQL) + " RETURNING id",
                event_row(event, status, rules, payload, now),
            )
            event_id = int(_one(cur)["id"])
            deploy_ids = [self._enqueue(cur, event_id, p, now) for p in planned]
            return RecordedEvent(event_id, str(status), rules, deploy_ids)

        return self._run("record events", body)

    @staticmethod
    def _find_duplicate(
        cur: Cursor, event: PushEvent, now: float, window: float
    ) -> dict[str, Any] | None:
        if event.delivery_id:
            cur.execute(
                "SELECT id, matched_rules FROM events WHERE delivery_id = %s",
                (event.delivery_id,),
            )
            row = cur.fetchone()
            if row is not None:
                return row
        if window <= 0 or not (event.digest or event.pushed_at):
            return None
        same: list[str] = []
        args: list[Any] = [event.repo, event.tag, event.registry or "", now - window]
        if event.digest is not None:
            same.append("digest = %s")
            args.append(event.digest)
        if event.pushed_at is not None:
            same.append("pushed_at = %s")
            args.append(event.pushed_at)
        cur.execute(
            "SELECT id, matched_rules FROM events WHERE repo = %s AND tag = %s"
            " AND coalesce(registry, '') = %s AND received_at >= %s AND status != 'duplicate'"
            f" AND ({' OR '.join(same)}) ORDER BY id DESC LIMIT 1",
            args,
        )
        return cur.fetchone()

    @staticmethod
    def _enqueue(cur: Cursor, event_id: int, p: PlannedDeploy, now: float) -> int:
        cur.execute(
            _pg(INSERT_DEPLOY_SQL) + " RETURNING id",
            deploy_row(event_id, p, now),
        )
        new_id = int(_one(cur)["id"])
        cur.execute(_pg(SUPERSEDE_SQL), supersede_args(new_id, now, p.target_key))
        return new_id

    # ------------------------------------------------------------ queue

    def claim(self, owner: str, lease_seconds: float, now: float) -> DeployRecord | None:
        def body(cur: Cursor) -> DeployRecord | None:
            # The oldest due deploy whose target is idle and has no older due deploy
            # waiting; rows another replica is claiming right now are skipped.
            cur.execute(
                "SELECT d.id FROM deploys d WHERE d.status = 'queued' AND d.not_before <= %s"
                " AND NOT EXISTS (SELECT 1 FROM deploys r WHERE r.target_key = d.target_key"
                "   AND r.status = 'running')"
                " AND NOT EXISTS (SELECT 1 FROM deploys o WHERE o.target_key = d.target_key"
                "   AND o.status = 'queued' AND o.not_before <= %s AND o.id < d.id)"
                + NOT_HELD_SQL.replace("%", "%%")
                + " ORDER BY d.id LIMIT 1 FOR UPDATE OF d SKIP LOCKED",
                (now, now),
            )
            row = cur.fetchone()
            if row is None:
                return None
            # The try counter goes up before the work starts, so a crash still counts.
            # A concurrent claim of the same target fails on deploys_one_running.
            cur.execute(
                "UPDATE deploys SET status = 'running', attempts = attempts + 1,"
                " lease_owner = %s, lease_until = %s, started_at = coalesce(started_at, %s),"
                " error = NULL WHERE id = %s",
                (owner, now + lease_seconds, now, row["id"]),
            )
            return self._get(cur, row["id"])

        return self._run("claim work", body)

    def heartbeat(self, deploy_id: int, owner: str, lease_until: float) -> bool:
        def body(cur: Cursor) -> bool:
            cur.execute(
                "UPDATE deploys SET lease_until = %s WHERE id = %s AND lease_owner = %s"
                " AND status = 'running'",
                (lease_until, deploy_id, owner),
            )
            return cur.rowcount == 1

        return self._run("renew a lease", body)

    def decide(self, deploy_id: int, approve: bool, by: str, now: float) -> bool:
        def body(cur: Cursor) -> bool:
            cur.execute(_pg(DECIDE_SQL), decision_args(deploy_id, approve, by, now))
            return cur.rowcount == 1

        return self._run("record a decision", body)

    def defer(self, deploy_id: int, owner: str, until: float, reason: str) -> None:
        def body(cur: Cursor) -> None:
            cur.execute(_pg(DEFER_SQL), (until, reason, deploy_id, owner))

        self._run("defer a deploy", body)

    def await_approval(self, deploy_id: int, owner: str, reason: str) -> None:
        def body(cur: Cursor) -> None:
            cur.execute(_pg(AWAIT_APPROVAL_SQL), ("awaiting approval", reason, deploy_id, owner))

        self._run("hold for approval", body)

    def set_progress(self, deploy_id: int, progress: str) -> None:
        def body(cur: Cursor) -> None:
            cur.execute("UPDATE deploys SET progress = %s WHERE id = %s", (progress, deploy_id))

        self._run("record progress", body)

    def finish(
        self,
        deploy_id: int,
        owner: str,
        result: DeployResult,
        now: float,
        notifications: NotificationBuilder | None = None,
    ) -> None:
        """Record the result; ``notifications`` builds outbox rows committed with it."""

        def body(cur: Cursor) -> None:
            cur.execute(
                "UPDATE deploys SET status = %s, old_image = coalesce(%s, old_image),"
                " new_image = coalesce(%s, new_image), output = %s, error = %s,"
                " finished_at = %s, lease_owner = NULL, lease_until = NULL"
                " WHERE id = %s AND lease_owner = %s",
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
                    _Cursor(cur), deploy_id, notifications, now, lambda i: self._get(cur, i)
                )

        self._run("finish a deploy", body)

    def retry_later(self, deploy_id: int, owner: str, not_before: float, error: str) -> None:
        def body(cur: Cursor) -> None:
            cur.execute("SELECT target_key FROM deploys WHERE id = %s", (deploy_id,))
            row = cur.fetchone()
            if row is None:
                return
            _lock(cur, [_target_lock(row["target_key"])])
            # A newer push for the target may be queued already; then this one is superseded.
            cur.execute(
                "SELECT n.id FROM deploys n JOIN deploys d ON n.target_key = d.target_key"
                " WHERE d.id = %s AND n.id > d.id AND n.status = 'queued' ORDER BY n.id DESC",
                (deploy_id,),
            )
            newer = cur.fetchone()
            status = DeployStatus.SUPERSEDED if newer else DeployStatus.QUEUED
            cur.execute(
                "UPDATE deploys SET status = %s, not_before = %s, error = %s,"
                " lease_owner = NULL, lease_until = NULL, superseded_by = %s,"
                " finished_at = %s WHERE id = %s AND lease_owner = %s",
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

        self._run("schedule a retry", body)

    def recover(self, now: float, *, all_running: bool = False) -> list[int]:
        """Release deploys whose owner stopped renewing its lease.

        Service updates are idempotent (the digest check turns a repeat into
        ``unchanged``), so they go back to the queue. A command may already have done
        its work, so it is only re-run when its rule says ``idempotent: true``.
        With several replicas, only ever call it without ``all_running``.
        """
        expired = "" if all_running else " AND lease_until < %s"
        args: tuple[Any, ...] = () if all_running else (now,)

        def body(cur: Cursor) -> list[int]:
            cur.execute(
                "SELECT DISTINCT target_key FROM deploys WHERE status = 'running'" + expired,
                args,
            )
            keys = [r["target_key"] for r in cur.fetchall()]
            if not keys:
                return []
            _lock(cur, [_target_lock(k) for k in keys])
            # Re-read under the locks: another replica may have recovered some already,
            # or their owners renewed the lease meanwhile.
            cur.execute(
                "SELECT id, kind, action FROM deploys WHERE status = 'running'"
                + expired
                + " AND target_key = ANY(%s) ORDER BY id FOR UPDATE",
                (*args, keys),
            )
            rows = cur.fetchall()
            for row in rows:
                statement, values = recovery(row, now)
                cur.execute(_pg(statement), values)
            return [r["id"] for r in rows]

        return self._run("recover leases", body)

    def next_due(self) -> float | None:
        def body(cur: Cursor) -> float | None:
            cur.execute(
                "SELECT min(not_before) AS due FROM deploys d WHERE status = 'queued'"
                + NOT_HELD_SQL.replace("%", "%%")
            )
            return _one(cur)["due"]

        return self._run("read the queue", body)

    # ------------------------------------------------------------ pauses and manual actions

    def pause(self, key: str, *, reason: str | None, by: str | None, now: float) -> None:
        def body(cur: Cursor) -> None:
            cur.execute(_pg(PAUSE_SQL), (key, reason, by, now))

        self._run("pause", body)

    def resume(self, key: str) -> bool:
        def body(cur: Cursor) -> bool:
            cur.execute("DELETE FROM pauses WHERE key = %s", (key,))
            return cur.rowcount == 1

        return self._run("resume", body)

    def list_pauses(self) -> list[dict[str, Any]]:
        def body(cur: Cursor) -> list[dict[str, Any]]:
            cur.execute("SELECT key, reason, paused_by, paused_at FROM pauses ORDER BY key")
            return [dict(r) for r in cur.fetchall()]

        return self._run("list pauses", body)

    def requeue(self, deploy_id: int, now: float) -> int | None:
        def body(cur: Cursor) -> int | None:
            cur.execute(
                "SELECT event_id, rule, kind, target, target_key, action FROM deploys"
                " WHERE id = %s",
                (deploy_id,),
            )
            row = cur.fetchone()
            if row is None:
                return None
            _lock(cur, [row["target_key"]])
            planned = planned_from_row(row)
            return self._enqueue(cur, row["event_id"], planned, now)

        return self._run("requeue", body)

    def last_successes(self) -> dict[str, float]:
        def body(cur: Cursor) -> dict[str, float]:
            cur.execute(
                "SELECT target, max(finished_at) AS at FROM deploys WHERE status = 'succeeded'"
                " GROUP BY target"
            )
            return {r["target"]: r["at"] for r in cur.fetchall() if r["at"] is not None}

        return self._run("read successes", body)

    # ------------------------------------------------------------ reading

    @staticmethod
    def _get(cur: Cursor, deploy_id: int) -> DeployRecord | None:
        cur.execute(
            f"SELECT {DEPLOY_COLUMNS} FROM deploys d JOIN events e ON e.id = d.event_id"
            " WHERE d.id = %s",
            (deploy_id,),
        )
        row = cur.fetchone()
        return deploy_from_row(row) if row else None

    def get_deploy(self, deploy_id: int) -> DeployRecord | None:
        return self._run("read a deploy", lambda cur: self._get(cur, deploy_id))

    def list_deploys(self, flt: DeployFilter) -> list[DeployRecord]:
        where, args = flt.where("%s")
        sql = f"SELECT {DEPLOY_COLUMNS} FROM deploys d JOIN events e ON e.id = d.event_id"
        sql += where
        sql += " ORDER BY d.id DESC LIMIT %s"
        args.append(flt.limit)

        def body(cur: Cursor) -> list[DeployRecord]:
            cur.execute(sql, args)  # type: ignore[arg-type]
            return [deploy_from_row(r) for r in cur.fetchall()]

        return self._run("list deploys", body)

    def list_events(self, limit: int = 50) -> list[dict[str, Any]]:
        def body(cur: Cursor) -> list[dict[str, Any]]:
            cur.execute(
                "SELECT id, source, registry, repo, tag, digest, pusher, received_at, status,"
                " matched_rules FROM events ORDER BY id DESC LIMIT %s",
                (limit,),
            )
            return cur.fetchall()

        out = []
        for item in self._run("list events", body):
            item["matched_rules"] = json.loads(item["matched_rules"])
            out.append(item)
        return out

    def counts(self) -> dict[str, int]:
        def body(cur: Cursor) -> dict[str, int]:
            cur.execute("SELECT status, count(*) AS n FROM deploys GROUP BY status")
            out = {f"deploys_{r['status']}": int(r["n"]) for r in cur.fetchall()}
            cur.execute("SELECT count(*) AS n FROM events")
            out["events"] = int(_one(cur)["n"])
            return out

        return self._run("count deploys", body)


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class _Cursor:
    """The outbox's view of a cursor inside a transaction (see ``OutboxCursor``)."""

    def __init__(self, cur: Cursor):
        self._cur = cur

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._cur.execute(sql, args)  # type: ignore[arg-type]
        return self._cur.fetchall() if self._cur.description else []


def _one(cur: Cursor) -> dict[str, Any]:
    row = cur.fetchone()
    if row is None:  # pragma: no cover - RETURNING and aggregates always yield a row
        raise StoreError("the database returned no row")
    return row
