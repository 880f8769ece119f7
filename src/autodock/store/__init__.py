"""Durable state: events, the deploy queue, history. ``open_store`` picks the backend."""

from __future__ import annotations

from .base import DeployFilter, RecordedEvent, Store

__all__ = ["DeployFilter", "RecordedEvent", "Store", "open_store"]


def open_store(target: str) -> Store:
    """``postgresql://…`` opens the PostgreSQL store; anything else is a SQLite file path."""
    if target.startswith(("postgres://", "postgresql://")):
        from .postgres import PostgresStore  # optional dependency

        return PostgresStore(target)  # type: ignore[return-value]
    from .sqlite import SQLiteStore

    return SQLiteStore(target)
