"""Where is my push? The answer `autodock ci wait` polls: the deploys of the newest push
of ``repo:tag`` (or of one digest), and whether they are done."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request

from ..context import AppContext
from ..models import DeployRecord, DeployStatus
from ..store import DeployFilter

__all__ = ["push_state", "router"]

router = APIRouter(tags=["history"])
FAILED = {DeployStatus.FAILED, DeployStatus.ROLLED_BACK}


def _matches_digest(record: DeployRecord, digest: str | None) -> bool:
    if digest is None:
        return True
    return record.digest == digest or bool(
        record.new_image and record.new_image.endswith(f"@{digest}")
    )


def push_state(
    records: list[DeployRecord], tag: str, digest: str | None, since: float | None
) -> dict[str, Any]:
    """Pure: from a repo's recent deploys, the state of the newest matching push."""
    mine = [
        r
        for r in records
        if r.tag == tag and _matches_digest(r, digest) and (since is None or r.created_at >= since)
    ]
    if not mine:
        return {"state": "pending", "deploys": [], "detail": "no deploy recorded for it yet"}
    newest_event = max(r.event_id for r in mine)
    deploys = [r for r in mine if r.event_id == newest_event]
    items = [d.to_dict() for d in deploys]
    if any(not d.status.final for d in deploys):
        state = "running"
    elif any(d.status in FAILED for d in deploys):
        state = "failed"
    elif all(d.status is DeployStatus.SUPERSEDED for d in deploys):
        state = "superseded"
    elif all(d.status is DeployStatus.IGNORED for d in deploys):
        state = "held"
    else:
        state = "succeeded"
    running = sorted({d.new_image for d in deploys if d.new_image and d.status.final})
    return {"state": state, "event_id": newest_event, "deploys": items, "images": running}


@router.get("/api/v1/push-status", summary="State of the newest push of repo:tag (or a digest)")
async def push_status(
    request: Request,
    repo: str,
    tag: str,
    digest: str | None = None,
    since: float | None = None,
    limit: int = Query(200, ge=1, le=1000),
) -> dict[str, Any]:
    ctx: AppContext = request.app.state.ctx
    records = await asyncio.to_thread(ctx.store.list_deploys, DeployFilter(repo=repo, limit=limit))
    return push_state(records, tag, digest, since)
