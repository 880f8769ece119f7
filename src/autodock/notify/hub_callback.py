"""Docker Hub's ``callback_url``: tell Hub whether the push's deploys worked."""

from __future__ import annotations

import httpx

from .delivery import Outcome, classify_http, post

__all__ = ["send_hub_callback"]


async def send_hub_callback(
    client: httpx.AsyncClient, callback_url: str | None, payload: str, timeout: float
) -> Outcome:
    if not callback_url or not callback_url.startswith(("https://", "http://")):
        return Outcome.permanent("the event's callback_url is not an http(s) URL")
    response = await post(client, callback_url, payload.encode(), {}, timeout)
    return response if isinstance(response, Outcome) else classify_http(response)
