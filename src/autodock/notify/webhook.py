"""Generic JSON webhooks, optionally signed with HMAC-SHA256.

Headers: ``X-Autodock-Event``, ``X-Autodock-Delivery`` (stable across retries, for
de-duplication), ``X-Autodock-Timestamp`` (unix seconds) and, with a secret,
``X-Autodock-Signature: sha256=<hex>`` of ``HMAC(secret, "<timestamp>." + raw body)``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx

from ..config import NotifierConfig
from .delivery import Outcome, classify_http, post

__all__ = ["send_webhook", "sign", "signed_headers", "verify"]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300.0
) -> bool:
    """What a receiver does: check the MAC in constant time and refuse stale timestamps."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def signed_headers(
    event: str, delivery: str, body: bytes, secret: str | None, now: float | None = None
) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    headers = {
        "X-Autodock-Event": event,
        "X-Autodock-Delivery": delivery,
        "X-Autodock-Timestamp": timestamp,
    }
    if secret:
        headers["X-Autodock-Signature"] = sign(secret, timestamp, body)
    return headers


async def send_webhook(
    client: httpx.AsyncClient,
    cfg: NotifierConfig,
    event: str,
    delivery: str,
    payload: str,
    timeout: float,
) -> Outcome:
    url = cfg.resolve_url()
    if not url:
        return Outcome.transient("no webhook URL resolved (check url_env/url_file)")
    body = payload.encode()
    headers = signed_headers(event, delivery, body, cfg.resolve_secret())
    response = await post(client, url, body, headers, timeout)
    return response if isinstance(response, Outcome) else classify_http(response)
