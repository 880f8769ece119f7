"""Prod→stage PostgreSQL cloning (subset, FK closure, masking, atomic swap) and parity.

Modules: ``urls`` (identity, redaction, production guard), ``schema`` (catalog
introspection and DDL), ``closure`` (which rows to copy, pure), ``masking`` (pure),
``copy`` (the streaming clone), ``swap``, ``progress``, ``schedule`` (cron jobs from
``autodock.yml``), ``parity`` (stage vs prod services and schemas), ``cli``.
"""

from __future__ import annotations

from ..exceptions import AutodockError

__all__ = ["CloneError", "ProductionTargetError"]


class CloneError(AutodockError):
    """A clone cannot be planned or failed while running."""


class ProductionTargetError(CloneError):
    """The clone's target looks like production; autodock refuses to write there."""
