"""Errors autodock raises on purpose.

    AutodockError
    ├── ConfigError            the configuration file is invalid (carries line numbers)
    ├── PayloadError           a webhook body is malformed or names an invalid image
    ├── StoreError
    │   └── StoreUnavailable   the store cannot durably record right now (intake → 503)
    └── DeployError            a deploy failed for a reason worth showing to a person
        └── TransientDeployError   worth retrying later (engine or registry unreachable)

Each class maps to one CLI exit code (see ``cli.EXIT_CODES``).
"""

from __future__ import annotations

__all__ = [
    "AutodockError",
    "ConfigError",
    "DeployError",
    "PayloadError",
    "StoreError",
    "StoreUnavailable",
    "TransientDeployError",
]


class AutodockError(Exception):
    """Base class of every error autodock raises deliberately."""


class ConfigError(AutodockError):
    """The configuration is invalid; ``problems`` lists ``(line, message)`` pairs."""

    def __init__(self, message: str, problems: list[tuple[int | None, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        lines = [super().__str__()]
        for line, msg in self.problems:
            lines.append(f"  line {line}: {msg}" if line else f"  {msg}")
        return "\n".join(lines)


class PayloadError(AutodockError):
    """A webhook body cannot be accepted; the message is safe to return to the sender."""


class StoreError(AutodockError):
    """The store failed."""


class StoreUnavailable(StoreError):
    """The store cannot durably record anything now (disk full, read-only, locked)."""


class DeployError(AutodockError):
    """A deploy failed permanently; the message explains why."""


class TransientDeployError(DeployError):
    """A deploy failed for a reason that may pass (engine down, registry unreachable)."""
