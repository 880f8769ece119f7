"""HTTP API (``/api/v1``), live stream, health, Prometheus metrics, and the dashboard.

Read endpoints are open or need the API token (``api.read``); actions (web/actions.py)
always need it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from prometheus_client import generate_latest

from ..config import ServiceAction
from ..context import AppContext
from ..exceptions import TransientDeployError
from ..models import DeployRecord, DeployStatus
from ..store import DeployFilter
from . import actions, dashboard
from .auth import require_read_token
from .events import Message
from .services import describe_services, is_held

__all__ = ["router"]

router = APIRouter()
MAX_ID = 2**63 - 1  # SQLite's INTEGER; larger ids are a 422, not an OverflowError
read = APIRouter(prefix="/api/v1", dependencies=[Depends(require_read_token)])


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


@router.get("/healthz", tags=["ops"], summary="Liveness: the store answers")
async def healthz(request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    counts = await asyncio.to_thread(ctx.store.counts)
    return {"status": "ok", "docker": ctx.index.healthy, "queued": counts.get("deploys_queued", 0)}


def _pause_keys(ctx: AppContext) -> set[str]:
    return {p["key"] for p in ctx.store.list_pauses()}


def _deploy_dict(record: DeployRecord, pause_keys: set[str]) -> dict[str, Any]:
    return {**record.to_dict(), "held": is_held(record, pause_keys)}


@router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    ctx = _ctx(request)

    def collect() -> None:
        counts = ctx.store.counts()
        keys = _pause_keys(ctx)
        queued = ctx.store.list_deploys(DeployFilter(status="queued", limit=10_000))
        held = sum(1 for d in queued if is_held(d, keys))
        m = ctx.metrics
        m.queue_depth.labels("queued").set(counts.get("deploys_queued", 0) - held)
        m.queue_depth.labels("held").set(held)
        m.queue_depth.labels("running").set(counts.get("deploys_running", 0))
        for status in DeployStatus:
            m.deploys_stored.labels(str(status)).set(counts.get(f"deploys_{status}", 0))
        m.pauses.set(len(keys))
        for target, finished in ctx.store.last_successes().items():
            m.last_success.labels(target).set(finished)

    await asyncio.to_thread(collect)
    ctx.metrics.stream_clients.set(ctx.events.subscribers)
    return PlainTextResponse(
        generate_latest(ctx.metrics.registry), media_type="text/plain; version=0.0.4"
    )


@read.get("/deploys", tags=["history"], summary="Deploys, newest first")
async def list_deploys(
    request: Request,
    target: str | None = Query(None, description="service (or command) name"),
    service: str | None = Query(None, description="alias of target"),
    status: str | None = None,
    repo: str | None = None,
    since: float | None = Query(None, description="created at or after (unix time)"),
    until: float | None = Query(None, description="created before (unix time)"),
    before_id: int | None = Query(None, ge=0, le=MAX_ID, description="page: ids below this one"),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    ctx = _ctx(request)
    flt = DeployFilter(target or service, status, repo, since, until, limit, before_id)

    def load() -> list[dict[str, Any]]:
        keys = _pause_keys(ctx)
        return [_deploy_dict(d, keys) for d in ctx.store.list_deploys(flt)]

    items = await asyncio.to_thread(load)
    next_before = items[-1]["id"] if len(items) == limit else None
    return {"deploys": items, "next_before_id": next_before}


@read.get("/deploys/{deploy_id}", tags=["history"])
async def get_deploy(request: Request, deploy_id: int = Path(ge=0, le=MAX_ID)) -> dict[str, Any]:
    ctx = _ctx(request)
    record = await asyncio.to_thread(ctx.store.get_deploy, deploy_id)
    if record is None:
        raise HTTPException(404, f"no deploy {deploy_id}")
    return _deploy_dict(record, await asyncio.to_thread(_pause_keys, ctx))


@read.get("/events", tags=["history"], summary="Received push events, newest first")
async def list_events(request: Request, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    return {"events": await asyncio.to_thread(_ctx(request).store.list_events, limit)}


async def _services(request: Request, name: str | None = None) -> list[dict[str, Any]]:
    ctx = _ctx(request)
    if ctx.index.connection is None:
        raise HTTPException(503, "no Docker engine configured")
    try:
        return await asyncio.to_thread(
            describe_services,
            ctx.index.connection,
            ctx.store,
            ctx.config,
            list(ctx.index.services),
            name,
        )
    except TransientDeployError as exc:
        raise HTTPException(503, str(exc)) from None


@read.get("/services", tags=["services"], summary="Swarm services: image, replicas, rules")
async def list_services(
    request: Request, managed: bool = Query(False, description="only services a rule deploys")
) -> dict[str, Any]:
    items = await _services(request)
    if managed:
        items = [s for s in items if s["managed"]]
    return {"services": items}


@read.get("/services/{name}", tags=["services"])
async def get_service(request: Request, name: str) -> dict[str, Any]:
    items = await _services(request, name)
    if not items:
        raise HTTPException(404, f"no service {name!r} in the swarm")
    return items[0]


@read.get("/rules", tags=["services"], summary="Configured and label rules, with pauses")
async def list_rules(request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    keys = await asyncio.to_thread(_pause_keys, ctx)
    rules = []
    for rule in ctx.config.rules:
        targets = [
            a.service if isinstance(a, ServiceAction) else " ".join(a.command)
            for a in rule.all_actions()
        ]
        name = rule.display_name
        rules.append(
            {
                "name": name,
                "repos": rule.repos,
                "tags": rule.tags,
                "targets": targets,
                "paused": f"rule:{name}" in keys,
            }
        )
    for svc in ctx.index.services:
        name = f"label:{svc.name}"
        rules.append(
            {
                "name": name,
                "repos": [svc.repo],
                "tags": [svc.tag],
                "targets": [svc.name],
                "paused": f"rule:{name}" in keys,
            }
        )
    return {"rules": rules}


@read.get("/pauses", tags=["services"], summary="Paused rules and services")
async def list_pauses(request: Request) -> dict[str, Any]:
    return {"pauses": await asyncio.to_thread(_ctx(request).store.list_pauses)}


@read.get(
    "/stream",
    tags=["history"],
    summary="Server-Sent Events: event, deploy, pause, resync",
    response_class=StreamingResponse,
)
async def stream(request: Request) -> StreamingResponse:
    ctx = _ctx(request)

    async def messages() -> AsyncIterator[str]:
        async with ctx.events.subscribe() as queue:
            yield "retry: 2000\n: connected\n\n"
            baseline: dict[str, int] | None = None
            last_sent = time.monotonic()
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=2.0)
                except TimeoutError:
                    pass
                else:
                    yield message.sse()
                    baseline, last_sent = None, time.monotonic()
                    continue
                if await request.is_disconnected():
                    return
                # Changes made by another process (`autodock trigger`) reach us by polling.
                counts = await asyncio.to_thread(ctx.store.counts)
                if baseline is not None and counts != baseline:
                    yield Message(0, "resync", {}).sse()
                    last_sent = time.monotonic()
                baseline = counts
                if time.monotonic() - last_sent > 15:
                    yield ": keep-alive\n\n"
                    last_sent = time.monotonic()

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


router.include_router(read)
router.include_router(actions.router)
router.include_router(dashboard.router)
