"""``GET /api/v1/notifications``: the outbox, newest first, with URLs redacted."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request

from ..context import AppContext
from .outbox import channel_endpoint

__all__ = ["router"]

router = APIRouter()


@router.get("/api/v1/notifications", tags=["notifications"], summary="Outbox, newest first")
async def list_notifications(
    request: Request,
    status: str | None = Query(None, pattern="^(pending|sent|dead)$"),
    deploy_id: int | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    ctx: AppContext = request.app.state.ctx
    store: Any = ctx.store
    items = await asyncio.to_thread(store.list_notifications, status, deploy_id, limit)
    counts = await asyncio.to_thread(store.notification_counts)
    out = []
    for n in items:
        cfg = ctx.config.notifiers.get(n.channel)
        out.append(n.to_dict(None if n.kind == "dockerhub" else channel_endpoint(cfg)))
    return {"notifications": out, "counts": counts}
