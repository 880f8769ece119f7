"""SQL and row shapes both stores share, written with ``?`` placeholders (the PostgreSQL
store swaps in ``%s``). What differs between the backends (locking, ids, transactions)
stays in each store; what a row *is* lives here once."""

from __future__ import annotations

import json
from typing import Any

from ..models import WAITING, DeployRecord, DeployStatus, EventStatus, PlannedDeploy, PushEvent

__all__ = [
    "DEPLOY_COLUMNS",
    "INSERT_DEPLOY_SQL",
    "INSERT_EVENT_SQL",
    "MAX_OUTPUT",
    "SUPERSEDE_SQL",
    "bounded",
    "deploy_from_row",
    "deploy_row",
    "event_row",
    "planned_from_row",
    "recovery",
    "supersede_args",
]

MAX_OUTPUT = 64 * 1024
DEPLOY_COLUMNS = """
    d.id, d.event_id, d.rule, d.kind, d.target, d.target_key, d.action, d.status,
    d.attempts, d.created_at, d.old_image, d.new_image, d.started_at, d.finished_at,
    d.output, d.error, d.superseded_by, d.progress,
    e.repo, e.tag, e.digest, e.registry, e.pusher, e.source, e.callback_url
"""
INSERT_EVENT_SQL = (
    "INSERT INTO events (source, delivery_id, registry, repo, tag, digest, pusher,"
    " pushed_at, callback_url, received_at, status, matched_rules, payload)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_DEPLOY_SQL = (
    "INSERT INTO deploys (event_id, rule, kind, target, target_key, action, status,"
    " created_at) VALUES (?,?,?,?,?,?,?,?)"
)
# Older deploys of the target that have not started are replaced: latest push wins.
SUPERSEDE_SQL = (
    "UPDATE deploys SET status = ?, superseded_by = ?, finished_at = ?"
    " WHERE target_key = ? AND status IN (?, ?) AND id < ?"
)
_RERUN = (
    "UPDATE deploys SET status = 'queued', lease_owner = NULL, lease_until = NULL,"
    " error = ? WHERE id = ?"
)
_GIVE_UP = (
    "UPDATE deploys SET status = 'failed', lease_owner = NULL, lease_until = NULL,"
    " finished_at = ?, error = ? WHERE id = ?"
)
_RERUN_WHY = "interrupted: autodock stopped during this deploy; retrying"
_GIVE_UP_WHY = (
    "interrupted: autodock stopped while the command ran; not run again because commands "
    "may not be idempotent (set idempotent: true on the action to allow it)"
)


def bounded(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_OUTPUT:
        return text
    return "…(truncated)…\n" + text[-MAX_OUTPUT:]


def event_row(
    event: PushEvent, status: EventStatus, rules: list[str], payload: str | None, now: float
) -> tuple[Any, ...]:
    return (
        event.source,
        event.delivery_id,
        event.registry,
        event.repo,
        event.tag,
        event.digest,
        event.pusher,
        event.pushed_at,
        event.callback_url,
        now,
        str(status),
        json.dumps(rules),
        payload,
    )


def deploy_row(event_id: int, p: PlannedDeploy, now: float) -> tuple[Any, ...]:
    return (
        event_id,
        p.rule,
        p.kind,
        p.target,
        p.target_key,
        json.dumps(p.action),
        str(p.initial_status),
        now,
    )


def supersede_args(new_id: int, now: float, target_key: str) -> tuple[Any, ...]:
    return (str(DeployStatus.SUPERSEDED), new_id, now, target_key, *map(str, WAITING), new_id)


def recovery(row: Any, now: float) -> tuple[str, tuple[Any, ...]]:
    """The statement that releases an interrupted deploy.

    Service updates are idempotent (the digest check turns a repeat into ``unchanged``),
    so they go back to the queue. A command may already have done its work, so it is only
    re-run when its rule says ``idempotent: true``.
    """
    if row["kind"] == "service" or json.loads(row["action"]).get("idempotent"):
        return _RERUN, (_RERUN_WHY, row["id"])
    return _GIVE_UP, (now, _GIVE_UP_WHY, row["id"])


def planned_from_row(row: Any) -> PlannedDeploy:
    return PlannedDeploy(
        rule=row["rule"],
        kind=row["kind"],
        target=row["target"],
        target_key=row["target_key"],
        action=json.loads(row["action"]),
    )


def deploy_from_row(row: Any) -> DeployRecord:
    data = dict(row)
    data["action"] = json.loads(data["action"])
    data["status"] = DeployStatus(data["status"])
    return DeployRecord(**data)
