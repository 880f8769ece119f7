"""One HTTP delivery attempt and what it means: sent, retry (maybe after a delay), or dead."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

import httpx

from .. import __version__

__all__ = ["Outcome", "classify_http", "post", "retry_after", "scrub"]

USER_AGENT = f"autodock/{__version__}"
_RETRYABLE = {408, 425, 429}


@dataclass(frozen=True)
class Outcome:
    sent: bool
    retry: bool = False  # worth trying again (network, 5xx, 429, rate limits)
    retry_after: float | None = None  # seconds the receiver asked us to wait
    error: str | None = None

    @classmethod
    def ok(cls) -> Outcome:
        return cls(sent=True)

    @classmethod
    def transient(cls, error: str, retry_after: float | None = None) -> Outcome:
        return cls(sent=False, retry=True, retry_after=retry_after, error=error)

    @classmethod
    def permanent(cls, error: str) -> Outcome:
        return cls(sent=False, retry=False, error=error)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200]


def classify_http(response: httpx.Response) -> Outcome:
    """Generic receivers: 2xx sent; 408/425/429/5xx retry; other 4xx will never work."""
    code = response.status_code
    if 200 <= code < 300:
        return Outcome.ok()
    error = f"HTTP {code}: {_snippet(response)}".rstrip(": ")
    if code in _RETRYABLE or code >= 500:
        return Outcome.transient(error, retry_after(response))
    return Outcome.permanent(error)


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> httpx.Response | Outcome:
    """POST, turning transport failures into a retryable ``Outcome`` (never raising)."""
    try:
        return await client.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        return Outcome.transient(f"timed out after {timeout:g}s")
    except httpx.HTTPError as exc:
        # httpx messages carry no URL, but keep only the class and text to be sure
        return Outcome.transient(f"{type(exc).__name__}: {exc}")


def scrub(text: str | None, secrets: list[str | None]) -> str | None:
    """Remove secret values (URLs, tokens) from text bound for logs, the store or the API."""
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text
