"""Versioned SQL migrations, shared by every backend: ``NNNN_name.sql``, applied in order."""

from __future__ import annotations

from importlib import resources

__all__ = ["migration_scripts"]


def migration_scripts() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for every migration shipped with the package, in order."""
    out = []
    for entry in resources.files(__package__).iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text()))
    return sorted(out)
