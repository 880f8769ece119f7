"""Atomic replacement of the target schema by the freshly loaded one.

Readers resolve ``schema.table`` by name at each statement; renaming both schemas in
one short transaction means a statement sees either the old tables or the new ones,
complete. Renaming a schema does not lock its tables, so the swap does not wait for
running queries; dropping the old schema afterwards does, in its own transaction.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from .closure import qi

__all__ = ["cleanup_stale", "drop_schema", "load_schema_names", "lock_target", "swap_schemas"]

log = logging.getLogger("autodock.db.clone")
NEW_MARK = "__autodock_new_"
OLD_MARK = "__autodock_old_"
TOKEN_LEN = 8


def load_schema_names(schema: str, token: str) -> tuple[str, str]:
    """(load schema, retired schema) names, within PostgreSQL's 63-byte identifiers."""
    base = schema[: 63 - len(NEW_MARK) - TOKEN_LEN]
    token = token[:TOKEN_LEN]
    return f"{base}{NEW_MARK}{token}", f"{base}{OLD_MARK}{token}"


def lock_target(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Session advisory lock, so two clones into one target schema cannot interleave."""
    row = conn.execute(
        "SELECT pg_try_advisory_lock(hashtext('autodock.db.clone'), hashtext(%s))", [schema]
    ).fetchone()
    conn.commit()
    return bool(row and row[0])


def cleanup_stale(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    """Drop load/retired schemas left by clones that died (we hold the target lock)."""
    base = schema[: 63 - len(NEW_MARK) - TOKEN_LEN]
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) "
        "OR starts_with(nspname, %s)",
        [base + NEW_MARK, base + OLD_MARK],
    ).fetchall()
    names = [r[0] for r in rows]
    for name in names:
        conn.execute(f"DROP SCHEMA {qi(name)} CASCADE")
    conn.commit()
    return names


def _replicate_privileges(conn: psycopg.Connection[Any], old: str, new: str) -> None:
    """Give the new schema and its tables the owners and grants the old ones had.

    Stage applications usually connect as a role that is not the cloning user; without
    this, the swap would lock them out of their own tables.
    """
    row = conn.execute(
        "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", [old]
    ).fetchone()
    if row:
        _try(conn, f"ALTER SCHEMA {qi(new)} OWNER TO {qi(row[0])}")
    for grantee, priv, grantable in conn.execute(
        "SELECT coalesce(pg_get_userbyid(nullif(a.grantee, 0)), 'PUBLIC'), a.privilege_type, "
        "a.is_grantable FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = %s",
        [old],
    ).fetchall():
        who = "PUBLIC" if grantee == "PUBLIC" else qi(grantee)
        option = " WITH GRANT OPTION" if grantable else ""
        _try(conn, f"GRANT {priv} ON SCHEMA {qi(new)} TO {who}{option}")
    rows = conn.execute(
        """
        SELECT o.relname, o.relkind, pg_get_userbyid(o.relowner),
               coalesce(pg_get_userbyid(nullif(a.grantee, 0)), 'PUBLIC'),
               a.privilege_type, a.is_grantable
        FROM pg_class o
        JOIN pg_class n ON n.relname = o.relname AND n.relkind = o.relkind
             AND n.relnamespace = %(new)s::regnamespace
        LEFT JOIN LATERAL aclexplode(o.relacl) a ON true
        WHERE o.relnamespace = %(old)s::regnamespace AND o.relkind IN ('r', 'S')
        """,
        {"old": qi(old), "new": qi(new)},
    ).fetchall()
    owners_done: set[str] = set()
    for name, kind, owner, grantee, priv, grantable in rows:
        what = "TABLE" if kind == "r" else "SEQUENCE"
        target = f"{qi(new)}.{qi(name)}"
        if name not in owners_done:
            owners_done.add(name)
            _try(conn, f"ALTER {what} {target} OWNER TO {qi(owner)}")
        if priv:
            who = "PUBLIC" if grantee == "PUBLIC" else qi(grantee)
            option = " WITH GRANT OPTION" if grantable else ""
            _try(conn, f"GRANT {priv} ON {what} {target} TO {who}{option}")


def _try(conn: psycopg.Connection[Any], statement: str) -> None:
    try:
        with conn.transaction():  # a savepoint: one refused grant must not undo the swap
            conn.execute(statement)
    except psycopg.Error as exc:
        log.warning("could not replicate privilege (%s): %s", statement, exc)


def swap_schemas(
    conn: psycopg.Connection[Any], schema: str, new: str, old: str, lock_timeout: str = "10s"
) -> bool:
    """Rename ``schema`` → ``old`` and ``new`` → ``schema`` in one transaction.

    Returns whether there was a previous schema (now named ``old``).
    """
    with conn.transaction():
        conn.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
        existed = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
        if existed:
            _replicate_privileges(conn, schema, new)
            conn.execute(f"ALTER SCHEMA {qi(schema)} RENAME TO {qi(old)}")
        conn.execute(f"ALTER SCHEMA {qi(new)} RENAME TO {qi(schema)}")
    return existed is not None


def drop_schema(conn: psycopg.Connection[Any], name: str, lock_timeout: str = "120s") -> bool:
    """Drop a retired schema; waits for queries still reading it. False when it timed out."""
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
            conn.execute(f"DROP SCHEMA IF EXISTS {qi(name)} CASCADE")
        return True
    except psycopg.errors.LockNotAvailable:
        log.warning("schema %s still in use; left for the next clone to drop", name)
        return False
