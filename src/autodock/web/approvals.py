"""Approvals and freezes (bearer token, like every action).

POST /api/v1/deploys/{id}/approve | /reject    a deploy awaiting approval
GET  /api/v1/freeze                            is everything held?
POST /api/v1/freeze {"on": true, "reason"}     hold (or release) every push's deploy
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from ..context import AppContext
from .auth import require_action_token

__all__ = ["FREEZE_KEY", "router"]

router = APIRouter(prefix="/api/v1", tags=["actions"], dependencies=[Depends(require_action_token)])
FREEZE_KEY = "*"  # a pause of every rule and target
MAX_ID = 2**63 - 1


class Decision(BaseModel):
    by: str = Field("api", max_length=100, description="who decides, for the record")


class FreezeRequest(BaseModel):
    on: bool
    reason: str | None = Field(None, max_length=500)
    by: str | None = Field(None, max_length=100)


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def _decide(request: Request, deploy_id: int, approve: bool, by: str) -> dict[str, Any]:
    ctx = _ctx(request)
    changed = await asyncio.to_thread(ctx.store.decide, deploy_id, approve, by, time.time())
    if not changed:
        record = await asyncio.to_thread(ctx.store.get_deploy, deploy_id)
        if record is None:
            raise HTTPException(404, f"no deploy {deploy_id}")
        raise HTTPException(409, f"deploy {deploy_id} is {record.status}, not awaiting approval")
    if approve and ctx.worker is not None:
        ctx.worker.wake()
    record = await asyncio.to_thread(ctx.store.get_deploy, deploy_id)
    return record.to_dict() if record else {"id": deploy_id}


@router.post("/deploys/{deploy_id}/approve", summary="Let a deploy awaiting approval run")
async def approve(
    request: Request, body: Decision, deploy_id: int = Path(ge=0, le=MAX_ID)
) -> dict[str, Any]:
    return await _decide(request, deploy_id, True, body.by)


@router.post("/deploys/{deploy_id}/reject", summary="Refuse a deploy awaiting approval")
async def reject(
    request: Request, body: Decision, deploy_id: int = Path(ge=0, le=MAX_ID)
) -> dict[str, Any]:
    return await _decide(request, deploy_id, False, body.by)


@router.get("/freeze", summary="Whether deploys are frozen")
async def freeze_state(request: Request) -> dict[str, Any]:
    pauses = await asyncio.to_thread(_ctx(request).store.list_pauses)
    frozen = next((p for p in pauses if p["key"] == FREEZE_KEY), None)
    return {"frozen": frozen is not None, **(frozen or {})}


@router.post("/freeze", summary="Freeze (hold every deploy) or thaw")
async def freeze(request: Request, body: FreezeRequest) -> dict[str, Any]:
    ctx = _ctx(request)
    if body.on:
        await asyncio.to_thread(
            ctx.store.pause,
            FREEZE_KEY,
            reason=body.reason or "freeze",
            by=body.by,
            now=time.time(),
        )
    else:
        await asyncio.to_thread(ctx.store.resume, FREEZE_KEY)
        if ctx.worker is not None:
            ctx.worker.wake()
    return await freeze_state(request)
