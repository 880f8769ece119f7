"""Versioned SQL migrations, one folder per SQL dialect: ``<dialect>/NNNN_name.sql``.

Every dialect ships the same versions under the same names; the backends apply the
ones missing from their ``schema_migrations`` table, in order, each in a transaction.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["DIALECTS", "migration_scripts", "split_statements"]

DIALECTS = ("sqlite", "postgres")


def migration_scripts(dialect: str = "sqlite") -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for every migration of ``dialect`` shipped, in order."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    out = []
    for entry in resources.files(__package__).joinpath(dialect).iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text()))
    return sorted(out)


def split_statements(sql: str) -> list[str]:
    """The statements of a migration script (``--`` comment lines dropped, split on ``;``)."""
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
