"""Action endpoints (bearer token): trigger, rollback, pause/resume, retry.

Every action goes through the store and the worker like a push does: a trigger records
an event through intake's parser and planner; a rollback is a queued deploy of kind
``rollback`` (rule ``manual:rollback``), so it never races a deploy of the same service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

import docker.errors
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from ..context import AppContext
from ..exceptions import PayloadError, TransientDeployError
from ..executors.rollback import previous_image
from ..executors.swarm import _engine_call
from ..intake.parsers import parse_generic
from ..models import DeployStatus, PlannedDeploy, PushEvent
from ..planner import plan
from ..reference import InvalidReference
from .auth import require_action_token
from .services import rule_names

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["actions"], dependencies=[Depends(require_action_token)])


class TriggerRequest(BaseModel):
    repo: str = Field(description="org/app (the repository path)")
    tag: str
    digest: str | None = Field(None, description="sha256:…; resolved from the registry if omitted")
    registry: str | None = Field(None, description="host[:port]; omit for Docker Hub")
    pusher: str | None = None


class PauseRequest(BaseModel):
    reason: str | None = Field(None, max_length=500)
    by: str | None = Field(None, max_length=100)


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def _wake(ctx: AppContext) -> None:
    if ctx.worker is not None:
        ctx.worker.wake()


@router.post("/trigger", status_code=202, summary="Record a push by hand, as intake would")
async def trigger(body: TriggerRequest, request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    payload = body.model_dump(exclude_none=True)
    try:
        events, _ = parse_generic(payload)
    except PayloadError as exc:
        ctx.metrics.events.labels("manual", "invalid").inc()
        raise HTTPException(400, str(exc)) from None
    event = dataclasses.replace(events[0], source="manual", pusher=body.pusher or "api")
    planned = plan(event, ctx.config, ctx.index.services)
    recorded = await asyncio.to_thread(
        ctx.store.record_event,
        event,
        planned,
        payload=json.dumps(payload),
        now=time.time(),
        dedup_window=0,
    )
    ctx.metrics.events.labels("manual", recorded.status).inc()
    if recorded.deploy_ids:
        _wake(ctx)
    return {
        "id": recorded.event_id,
        "status": recorded.status,
        "matched_rules": recorded.matched_rules,
        "deploys": recorded.deploy_ids,
    }


@router.post(
    "/services/{name}/rollback", status_code=202, summary="Roll a service back to its previous spec"
)
async def rollback(name: str, request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    conn = ctx.index.connection
    if conn is None:
        raise HTTPException(503, "no Docker engine configured")
    try:
        service = await asyncio.to_thread(_engine_call, conn, lambda c: c.api.inspect_service(name))
    except docker.errors.NotFound:
        raise HTTPException(404, f"no service {name!r} in the swarm") from None
    except TransientDeployError as exc:
        raise HTTPException(503, str(exc)) from None
    current = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Image")
    target = previous_image(service)
    if target is None:
        raise HTTPException(409, f"service {name!r} has no previous spec to roll back to")
    try:
        event = PushEvent.of_image(target, "manual", pusher="api:rollback")
    except InvalidReference:
        event = PushEvent(source="manual", repo=name, tag="rollback", pusher="api:rollback")
    planned = [
        PlannedDeploy(
            rule="manual:rollback",
            kind="rollback",
            target=name,
            target_key=f"service:{name}",
            action={"service": name, "timeout": ctx.config.deploy_timeout},
        )
    ]
    recorded = await asyncio.to_thread(
        ctx.store.record_event,
        event,
        planned,
        payload=json.dumps({"rollback": name, "from": current, "to": target}),
        now=time.time(),
        dedup_window=0,
    )
    ctx.metrics.events.labels("manual", recorded.status).inc()
    _wake(ctx)
    return {"service": name, "deploy": recorded.deploy_ids[0], "from": current, "to": target}


async def _pause(ctx: AppContext, key: str, body: PauseRequest | None) -> dict[str, Any]:
    body = body or PauseRequest()
    await asyncio.to_thread(
        ctx.store.pause, key, reason=body.reason, by=body.by or "api", now=time.time()
    )
    return {"key": key, "paused": True}


async def _resume(ctx: AppContext, key: str) -> dict[str, Any]:
    released = await asyncio.to_thread(ctx.store.resume, key)
    _wake(ctx)
    return {"key": key, "paused": False, "was_paused": released}


def _known_rule(ctx: AppContext, name: str) -> str:
    if name not in rule_names(ctx.config, ctx.index.services):
        raise HTTPException(404, f"no rule named {name!r}")
    return f"rule:{name}"


@router.post("/services/{name}/pause", summary="Hold deploys to a service (pushes still recorded)")
async def pause_service(
    name: str, request: Request, body: PauseRequest | None = None
) -> dict[str, Any]:
    return await _pause(_ctx(request), f"service:{name}", body)


@router.post("/services/{name}/resume", summary="Release a service's held deploys (latest wins)")
async def resume_service(name: str, request: Request) -> dict[str, Any]:
    return await _resume(_ctx(request), f"service:{name}")


@router.post("/rules/{name:path}/pause", summary="Hold the deploys of a rule")
async def pause_rule(
    name: str, request: Request, body: PauseRequest | None = None
) -> dict[str, Any]:
    ctx = _ctx(request)
    return await _pause(ctx, _known_rule(ctx, name), body)


@router.post("/rules/{name:path}/resume", summary="Release a rule's held deploys")
async def resume_rule(name: str, request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    return await _resume(ctx, f"rule:{name}")


@router.post("/deploys/{deploy_id}/retry", status_code=202, summary="Run a failed deploy again")
async def retry(deploy_id: int, request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    record = await asyncio.to_thread(ctx.store.get_deploy, deploy_id)
    if record is None:
        raise HTTPException(404, f"no deploy {deploy_id}")
    if record.status is not DeployStatus.FAILED:
        raise HTTPException(409, f"deploy {deploy_id} is {record.status}; only failed ones retry")
    new_id = await asyncio.to_thread(ctx.store.requeue, deploy_id, time.time())
    _wake(ctx)
    return {"deploy": new_id, "retry_of": deploy_id, "target": record.target}
