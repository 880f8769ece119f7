"""Read API (``/api/v1``), health and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import generate_latest

from ..context import AppContext
from ..store import DeployFilter

__all__ = ["router"]

router = APIRouter()
MAX_ID = 2**63 - 1  # SQLite's INTEGER; larger ids are a 422, not an OverflowError


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


@router.get("/healthz", tags=["ops"], summary="Liveness: the store answers")
async def healthz(request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    counts = await asyncio.to_thread(ctx.store.counts)
    return {"status": "ok", "docker": ctx.index.healthy, "queued": counts.get("deploys_queued", 0)}


@router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    ctx = _ctx(request)
    counts = await asyncio.to_thread(ctx.store.counts)
    for status in ("queued", "running"):
        ctx.metrics.queue_depth.labels(status).set(counts.get(f"deploys_{status}", 0))
    return PlainTextResponse(
        generate_latest(ctx.metrics.registry), media_type="text/plain; version=0.0.4"
    )


@router.get("/api/v1/deploys", tags=["history"], summary="Deploys, newest first")
async def list_deploys(
    request: Request,
    target: str | None = None,
    status: str | None = None,
    repo: str | None = None,
    since: float | None = None,
    until: float | None = None,
    before_id: int | None = Query(None, ge=0, le=MAX_ID),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    flt = DeployFilter(target, status, repo, since, until, limit, before_id)
    deploys = await asyncio.to_thread(_ctx(request).store.list_deploys, flt)
    items = [d.to_dict() for d in deploys]
    next_before = items[-1]["id"] if len(items) == limit else None
    return {"deploys": items, "next_before_id": next_before}


@router.get("/api/v1/deploys/{deploy_id}", tags=["history"])
async def get_deploy(request: Request, deploy_id: int = Path(ge=0, le=MAX_ID)) -> dict[str, Any]:
    record = await asyncio.to_thread(_ctx(request).store.get_deploy, deploy_id)
    if record is None:
        raise HTTPException(404, f"no deploy {deploy_id}")
    return record.to_dict()


@router.get("/api/v1/events", tags=["history"], summary="Received push events, newest first")
async def list_events(request: Request, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    return {"events": await asyncio.to_thread(_ctx(request).store.list_events, limit)}
