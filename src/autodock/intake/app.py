"""Webhook routes. An event is committed to the store before any 2xx goes out.

POST /autodock/v1/          Docker Hub push webhook (drop-in for the old service)
POST /hooks/registry        Registry v2 notification envelopes
POST /hooks/{source}        dockerhub | generic | quay | harbor
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..context import AppContext
from ..exceptions import PayloadError, StoreUnavailable
from ..planner import plan
from .guard import WebhookGuard
from .parsers import PARSERS, parse_json

__all__ = ["router", "read_limited_body"]

log = logging.getLogger("autodock.intake")
router = APIRouter(tags=["webhooks"])


class BodyTooLarge(Exception):
    pass


async def read_limited_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing as soon as it passes ``limit`` bytes (never buffering more)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _accept(request: Request, source: str) -> JSONResponse:
    ctx: AppContext = request.app.state.ctx
    if ctx.guard is None:  # a context built without build_context
        ctx.guard = WebhookGuard(ctx.config, PARSERS)
    denied = await ctx.guard.check_request(request, source, ctx.store)
    if denied is not None:
        ctx.metrics.events.labels(source, denied.reason).inc()
        return denied.response
    try:
        body = await asyncio.wait_for(
            read_limited_body(request, ctx.config.max_body_bytes), ctx.config.body_timeout
        )
    except BodyTooLarge:
        ctx.metrics.events.labels(source, "too_large").inc()
        return _error(413, f"body larger than {ctx.config.max_body_bytes} bytes")
    except TimeoutError:
        ctx.metrics.events.labels(source, "timeout").inc()
        return _error(408, f"body not received within {ctx.config.body_timeout:g}s")
    denied = ctx.guard.check_body(request, source, body)
    if denied is not None:
        ctx.metrics.events.labels(source, denied.reason).inc()
        return denied.response
    try:
        events, skipped = PARSERS[source](parse_json(body))
    except PayloadError as exc:
        ctx.metrics.events.labels(source, "invalid").inc()
        log.info("rejected %s payload: %s", source, exc)
        return _error(400, str(exc))
    results: list[dict[str, Any]] = []
    payload_text = body.decode("utf-8", errors="replace")
    for event in events:
        planned = plan(event, ctx.config, ctx.index.services)
        try:
            recorded = await ctx.recorder.record(event, planned, payload_text)
        except StoreUnavailable as exc:
            ctx.metrics.events.labels(source, "unavailable").inc()
            log.error("cannot record %s:%s: %s", event.repo, event.tag, exc)
            return _error(
                503, "cannot record the event durably right now; retry later", {"Retry-After": "5"}
            )
        ctx.metrics.events.labels(source, recorded.status).inc()
        ctx.guard.note_queued(source, len(recorded.deploy_ids))
        log.info(
            "%s push %s:%s → %s %s",
            source,
            event.repo,
            event.tag,
            recorded.status,
            ",".join(recorded.matched_rules) or "-",
            extra={"event_id": recorded.event_id},
        )
        results.append(
            {
                "id": recorded.event_id,
                "repo": event.repo,
                "tag": event.tag,
                "status": recorded.status,
                "matched_rules": recorded.matched_rules,
                "deploys": recorded.deploy_ids,
            }
        )
    if any(r["deploys"] for r in results) and ctx.worker is not None:
        ctx.worker.wake()
    waiting = [d for r in results for d in r["deploys"] if r["status"] == "accepted"]
    if ctx.outbox is not None and waiting and any(rule.approval for rule in ctx.config.rules):
        await ctx.outbox.on_awaiting_approval(waiting)
    reply: dict[str, Any] = {"events": results, "skipped": skipped}
    if len(results) == 1:
        reply.update(results[0])
    return JSONResponse(reply, status_code=202)


@router.post("/autodock/v1/", summary="Docker Hub push webhook (legacy URL)")
@router.post("/autodock/v1", include_in_schema=False)
async def dockerhub_legacy(request: Request) -> JSONResponse:
    return await _accept(request, "dockerhub")


@router.post("/hooks/{source}", summary="Webhook for a registry: " + ", ".join(PARSERS))
async def hook(source: str, request: Request) -> JSONResponse:
    if source not in PARSERS:
        return _error(404, f"unknown source {source!r}; use one of: {', '.join(PARSERS)}")
    return await _accept(request, source)
