"""Database URLs: parsing, a comparable identity, redaction, and the production guard.

The guard errs on the side of refusing: every spelling of "this machine" (localhost,
127.0.0.1, ::1, a unix socket) counts as one host, because a clone that overwrites
production is far worse than one that needs a clearer URL.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import CloneError, ProductionTargetError

__all__ = [
    "DbIdentity",
    "ProductionGuard",
    "identity",
    "redact",
]

LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass(frozen=True)
class DbIdentity:
    host: str
    port: int
    dbname: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"


def _parse(url: str) -> dict[str, Any]:
    try:
        return dict(conninfo_to_dict(url))
    except Exception as exc:
        raise CloneError(f"not a PostgreSQL URL or conninfo: {redact(url)} ({exc})") from None


def _norm_host(host: str) -> str:
    # libpq allows a list of hosts; the first is the one a normal connect tries first.
    first = host.split(",")[0].strip().lower()
    if first in LOCAL_HOSTS or first.startswith("/"):
        return "localhost"
    return first


def identity(url: str) -> DbIdentity:
    """Where ``url`` points, normalised so that two spellings of one database compare equal."""
    params = _parse(url)
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST", "")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432").split(",")[0]
    user = params.get("user") or os.environ.get("PGUSER") or os.environ.get("USER", "")
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user
    try:
        port_num = int(port)
    except ValueError:
        raise CloneError(f"invalid port in {redact(url)}") from None
    return DbIdentity(_norm_host(str(host)), port_num, str(dbname))


def redact(url: str) -> str:
    """The URL without its password, fit for logs and result records."""
    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "<unparseable database URL>"
    if "password" in params:
        params["password"] = "***"  # noqa: S105 - a mask, not a secret
    return make_conninfo(**params)


@dataclass(frozen=True)
class ProductionGuard:
    """Entries from ``db_clone.production``: full URLs (compared by identity) or host globs."""

    entries: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, section: dict[str, Any] | None) -> ProductionGuard:
        raw = (section or {}).get("production") or []
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw):
            raise CloneError("db_clone.production must be a list of URLs or host patterns")
        return cls(tuple(raw))

    def matches(self, url: str) -> str | None:
        """The entry that ``url`` matches, or None."""
        target = identity(url)
        for entry in self.entries:
            if "://" in entry or "=" in entry:
                other = identity(entry)
                # A production entry without a database name protects the whole server.
                names_db = "dbname=" in entry or entry.split("://", 1)[1].rstrip("/").count("/")
                if (other.host, other.port) == (target.host, target.port) and (
                    not names_db or other.dbname == target.dbname
                ):
                    return entry
            elif any(
                fnmatch.fnmatchcase(name, pattern)
                for name in self._host_names(url, target)
                for pattern in (entry.lower(), f"{entry.lower()}:{target.port}")
            ):
                return entry
        return None

    @staticmethod
    def _host_names(url: str, target: DbIdentity) -> set[str]:
        """Every spelling of the target's host a pattern may be written against."""
        params = _parse(url)
        raw = str(params.get("host") or params.get("hostaddr") or "").split(",")[0].lower()
        names = {target.host, raw}
        if target.host == "localhost":
            names |= LOCAL_HOSTS - {""}
        return {f"{n}:{target.port}" for n in names} | names

    def check(self, source: str, target: str) -> None:
        """Raise ProductionTargetError unless writing to ``target`` is plausibly safe."""
        if identity(source) == identity(target):
            raise ProductionTargetError(
                f"--to is the same database as --from ({identity(target)}); refusing to clone"
            )
        hit = self.matches(target)
        if hit is not None:
            raise ProductionTargetError(
                f"--to {redact(target)} matches production entry {redact(hit)!r}; refusing"
            )
