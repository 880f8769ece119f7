"""Release groups: services that deploy together roll back together, so stage never runs
half a release.

A group is the services one push updates through a rule with ``group:`` (or services
labelled ``autodock.group``). When one of them fails or is rolled back, every sibling
this push already updated is put back on the image it ran before, and siblings not yet
started are not started. Both sides check after their own result is committed, so two
deploys finishing at once still see each other.
"""

from __future__ import annotations

from .models import DeployRecord, DeployStatus, PlannedDeploy, PushEvent
from .reference import InvalidReference
from .store import DeployFilter, Store

__all__ = ["failed_sibling", "rollback_siblings"]

BROKEN = frozenset({DeployStatus.FAILED, DeployStatus.ROLLED_BACK})


def _siblings(store: Store, record: DeployRecord) -> list[DeployRecord]:
    group = record.action.get("group")
    if not group:
        return []
    return [
        d
        for d in store.list_deploys(DeployFilter(event_id=record.event_id, limit=500))
        if d.id != record.id and d.action.get("group") == group
    ]


def failed_sibling(store: Store, record: DeployRecord) -> DeployRecord | None:
    """A sibling of this push's group that already failed (so ``record`` must not run)."""
    return next((d for d in _siblings(store, record) if d.status in BROKEN), None)


def rollback_siblings(store: Store, record: DeployRecord, now: float) -> list[int]:
    """After ``record`` finished: queue the rollbacks its group needs. Returns deploy ids."""
    siblings = _siblings(store, record)
    if record.status in BROKEN:
        undo = [d for d in siblings if d.status is DeployStatus.SUCCEEDED]
        cause = record
    elif record.status is DeployStatus.SUCCEEDED:
        cause = next((d for d in siblings if d.status in BROKEN), None)  # type: ignore[assignment]
        undo = [record] if cause is not None else []
    else:
        return []
    ids: list[int] = []
    for deploy in undo:
        if not deploy.old_image:
            continue
        try:
            event = PushEvent.of_image(
                deploy.old_image,
                "rollback",
                pusher=deploy.pusher,
                # Both sides of a race may ask; the store records the rollback once.
                delivery_id=f"group-rollback:{deploy.id}",
            )
        except InvalidReference:
            continue
        planned = PlannedDeploy(
            rule=f"group:{deploy.action['group']}",
            kind="service",
            target=deploy.target,
            target_key=deploy.target_key,
            action={
                "service": deploy.action["service"],
                "pin": deploy.old_image,
                "timeout": deploy.action.get("timeout"),
                "reason": f"{cause.target} failed in the same release (deploy {cause.id})",
            },
        )
        recorded = store.record_event(event, [planned], payload=None, now=now, dedup_window=0)
        ids.extend(recorded.deploy_ids)
    return ids
