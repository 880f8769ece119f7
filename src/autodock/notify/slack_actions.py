"""Slack's interactive buttons: Approve / Reject a deploy awaiting approval, Revert a
finished one. Every request is verified with the Slack app's signing secret
(``v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")``) and refused when older than five
minutes, as Slack documents."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..context import AppContext
from ..models import DeployStatus, PlannedDeploy, PushEvent
from ..reference import InvalidReference

__all__ = ["router", "slack_signature"]

router = APIRouter(tags=["webhooks"])
MAX_SKEW = 300
MAX_BODY = 64 * 1024


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _reply(text: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"text": text, "response_type": "ephemeral"}, status_code=status)


@router.post("/hooks/slack/actions", summary="Slack interactive buttons (signed by Slack)")
async def slack_actions(request: Request) -> JSONResponse:
    ctx: AppContext = request.app.state.ctx
    app = ctx.config.slack_app
    secret = app.resolve_secret() if app is not None else None
    if not secret:
        return _reply("Slack interactions are not configured", 404)
    body = await request.body()
    if len(body) > MAX_BODY:
        return _reply("too large", 413)
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW:
        return _reply("stale or missing timestamp", 401)
    if not hmac.compare_digest(slack_signature(secret, timestamp, body), signature):
        return _reply("bad signature", 401)
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        action = payload["actions"][0]
        deploy_id = int(action["value"])
        user = payload.get("user") or {}
        who = f"slack:{user.get('username') or user.get('id') or 'someone'}"
    except (KeyError, IndexError, ValueError, TypeError, UnicodeDecodeError):
        return _reply("not a Slack block action", 400)
    verb = str(action.get("action_id", ""))
    if verb in ("autodock_approve", "autodock_reject"):
        approve = verb == "autodock_approve"
        changed = await asyncio.to_thread(ctx.store.decide, deploy_id, approve, who, time.time())
        if not changed:
            return _reply(f"deploy {deploy_id} is not awaiting approval any more")
        if approve and ctx.worker is not None:
            ctx.worker.wake()
        return _reply(f"deploy {deploy_id} {'approved' if approve else 'rejected'} by {who}")
    if verb == "autodock_revert":
        return _reply(await _revert(ctx, deploy_id, who))
    return _reply(f"unknown action {verb!r}", 400)


async def _revert(ctx: AppContext, deploy_id: int, who: str) -> str:
    record = await asyncio.to_thread(ctx.store.get_deploy, deploy_id)
    if record is None or record.kind != "service" or not record.old_image:
        return f"deploy {deploy_id} has no previous image to go back to"
    if record.status is not DeployStatus.SUCCEEDED:
        return f"deploy {deploy_id} is {record.status}; nothing to revert"
    try:
        event = PushEvent.of_image(record.old_image, "manual")
    except InvalidReference:
        return f"deploy {deploy_id}: cannot read its previous image"
    planned = PlannedDeploy(
        rule="manual:revert",
        kind="service",
        target=record.target,
        target_key=record.target_key,
        action={
            "service": record.action["service"],
            "pin": record.old_image,
            "reason": f"revert of deploy {deploy_id} by {who}",
        },
    )
    recorded = await asyncio.to_thread(
        ctx.store.record_event,
        event,
        [planned],
        payload=json.dumps({"revert": deploy_id}),
        now=time.time(),
        dedup_window=0,
    )
    if ctx.worker is not None:
        ctx.worker.wake()
    return f"reverting {record.target} to {record.old_image} (deploy {recorded.deploy_ids[0]})"
