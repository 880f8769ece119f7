"""Slack: incoming webhooks (``200 ok``) or ``chat.postMessage`` with a bot token."""

from __future__ import annotations

import json

import httpx

from ..config import NotifierConfig
from .delivery import Outcome, classify_http, post, retry_after

__all__ = ["send_slack"]

# chat.postMessage errors that may pass; every other error needs a person to fix config.
_TRANSIENT_API_ERRORS = {
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}


async def send_slack(
    client: httpx.AsyncClient, cfg: NotifierConfig, payload: str, timeout: float
) -> Outcome:
    url = cfg.resolve_url()
    if url:
        return await _incoming_webhook(client, url, payload.encode(), timeout)
    token = cfg.resolve_token()
    if not token or not cfg.channel:
        return Outcome.transient("no Slack URL or token resolved (check url_env/token_env/files)")
    body = json.dumps({**json.loads(payload), "channel": cfg.channel}).encode()
    response = await post(
        client,
        cfg.api_url.rstrip("/") + "/chat.postMessage",
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"},
        timeout,
    )
    if isinstance(response, Outcome):
        return response
    if response.status_code != 200:
        return classify_http(response)
    try:
        data = response.json()
    except ValueError:
        return Outcome.transient(f"chat.postMessage answered non-JSON: {response.text[:100]}")
    if data.get("ok") is True:
        return Outcome.ok()
    error = str(data.get("error") or "unknown_error")
    if error in _TRANSIENT_API_ERRORS:
        return Outcome.transient(f"chat.postMessage: {error}", retry_after(response))
    return Outcome.permanent(f"chat.postMessage: {error}")


async def _incoming_webhook(
    client: httpx.AsyncClient, url: str, body: bytes, timeout: float
) -> Outcome:
    response = await post(client, url, body, {}, timeout)
    if isinstance(response, Outcome):
        return response
    # Slack answers 200 "ok"; errors are 4xx with a short code (invalid_payload,
    # no_service, channel_is_archived…) that retrying cannot fix.
    return classify_http(response)
