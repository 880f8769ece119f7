"""What every store offers: the durable event log, the deploy queue, and history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..models import DeployRecord, DeployResult, PlannedDeploy, PushEvent
from ..notify.records import NotificationBuilder

__all__ = ["DeployFilter", "RecordedEvent", "Store"]


# Shared by the backends; written with "?" placeholders (PostgreSQL swaps in "%s").

# Queued deploys of a paused rule or target (or of everything: key '*', a freeze) wait;
# manual actions and group rollbacks never do, they repair.
NOT_HELD_SQL = (
    " AND (d.rule LIKE 'manual:%' OR d.rule LIKE 'group:%' OR NOT EXISTS (SELECT 1 FROM pauses p"
    "   WHERE p.key IN ('*', 'rule:' || d.rule, d.target_key)))"
)
PAUSE_SQL = (
    "INSERT INTO pauses (key, reason, paused_by, paused_at) VALUES (?,?,?,?)"
    " ON CONFLICT (key) DO UPDATE SET reason = excluded.reason,"
    " paused_by = excluded.paused_by, paused_at = excluded.paused_at"
)
DECIDE_SQL = (
    "UPDATE deploys SET status = ?, progress = ?, error = ?, finished_at = ?"
    " WHERE id = ? AND status = 'awaiting_approval'"
)
AWAIT_APPROVAL_SQL = (
    "UPDATE deploys SET status = 'awaiting_approval', attempts = attempts - 1, progress = ?,"
    " error = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?"
)
DEFER_SQL = (
    "UPDATE deploys SET status = 'queued', attempts = attempts - 1, not_before = ?,"
    " progress = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?"
)


def decision_args(deploy_id: int, approve: bool, by: str, now: float) -> tuple[Any, ...]:
    if approve:
        return ("queued", f"approved by {by}", None, None, deploy_id)
    return ("rejected", None, f"rejected by {by}", now, deploy_id)


@dataclass(frozen=True)
class RecordedEvent:
    event_id: int
    status: str  # accepted | ignored | duplicate
    matched_rules: list[str]
    deploy_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DeployFilter:
    target: str | None = None
    status: str | None = None
    repo: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    before_id: int | None = None
    event_id: int | None = None

    def where(self, placeholder: str) -> tuple[str, list[Any]]:
        """The WHERE clause (or "") and its arguments, in the backend's placeholder style."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, op, value in (
            ("d.target", "=", self.target),
            ("d.status", "=", self.status),
            ("e.repo", "=", self.repo),
            ("d.event_id", "=", self.event_id),
            ("d.created_at", ">=", self.since),
            ("d.created_at", "<", self.until),
            ("d.id", "<", self.before_id),
        ):
            if value is not None and value != "":
                clauses.append(f"{column} {op} {placeholder}")
                args.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


class Store(Protocol):
    def record_event(
        self,
        event: PushEvent,
        planned: list[PlannedDeploy],
        *,
        payload: str | None,
        now: float,
        dedup_window: float,
    ) -> RecordedEvent:
        """Durably store the event and queue its deploys in one transaction.

        Queued deploys to the same target that have not started are marked superseded.
        A redelivery (same delivery id, or same push within ``dedup_window``) stores
        nothing and returns status ``duplicate`` with the original id.
        """
        ...

    def claim(self, owner: str, lease_seconds: float, now: float) -> DeployRecord | None: ...

    def heartbeat(self, deploy_id: int, owner: str, lease_until: float) -> bool: ...

    def set_progress(self, deploy_id: int, progress: str) -> None: ...

    def finish(
        self,
        deploy_id: int,
        owner: str,
        result: DeployResult,
        now: float,
        notifications: NotificationBuilder | None = None,
    ) -> None:
        """Record a result; rows from ``notifications`` commit in the same transaction."""
        ...

    def retry_later(self, deploy_id: int, owner: str, not_before: float, error: str) -> None: ...

    def recover(self, now: float, *, all_running: bool = False) -> list[int]:
        """Release deploys whose lease expired; return their ids."""
        ...

    def next_due(self) -> float | None: ...

    def decide(self, deploy_id: int, approve: bool, by: str, now: float) -> bool:
        """Approve (→ queued) or reject a deploy awaiting approval; False if it was not."""
        ...

    def defer(self, deploy_id: int, owner: str, until: float, reason: str) -> None:
        """Put a claimed deploy back until ``until`` without counting the try."""
        ...

    def await_approval(self, deploy_id: int, owner: str, reason: str) -> None:
        """A claimed deploy turned out to need a person (a policy): it waits for one."""
        ...

    def get_deploy(self, deploy_id: int) -> DeployRecord | None: ...

    def list_deploys(self, flt: DeployFilter) -> list[DeployRecord]: ...

    def list_events(self, limit: int = 50) -> list[dict[str, Any]]: ...

    def counts(self) -> dict[str, int]: ...

    # Pauses (keys ``rule:NAME`` / ``service:NAME``) hold queued deploys; manual actions.
    def pause(self, key: str, *, reason: str | None, by: str | None, now: float) -> None: ...

    def resume(self, key: str) -> bool: ...

    def list_pauses(self) -> list[dict[str, Any]]: ...

    def requeue(self, deploy_id: int, now: float) -> int | None: ...

    def last_successes(self) -> dict[str, float]: ...

    def close(self) -> None: ...
