"""Post-deploy smoke checks: probe the new version over HTTP before calling it done."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["CheckResult", "SmokeCheckSpec", "check_from_labels", "probe_url", "run_check"]

LABEL_PREFIX = "autodock.check."


@dataclass(frozen=True)
class SmokeCheckSpec:
    url: str | None = None  # full URL; else built from path + the service's published port
    path: str = "/"
    port: int | None = None  # the container port to find among published ports
    host: str = "127.0.0.1"  # where published ports are reachable
    expect_status: int = 200
    expect_body: str | None = None
    host_header: str | None = None  # to go through a name-based proxy
    timeout: float = 5.0
    retries: int = 5
    interval: float = 2.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SmokeCheckSpec:
        return cls(**{k: v for k, v in data.items() if v is not None})


@dataclass
class CheckResult:
    ok: bool
    detail: str


def check_from_labels(labels: dict[str, str]) -> SmokeCheckSpec | None:
    """``autodock.check.http=/healthz`` (+ ``.port``, ``.status``, ``.body``, ``.url``…)."""
    get = {k[len(LABEL_PREFIX) :]: v for k, v in labels.items() if k.startswith(LABEL_PREFIX)}
    if not get:
        return None
    try:
        return SmokeCheckSpec(
            url=get.get("url"),
            path=get.get("http", "/"),
            port=int(get["port"]) if "port" in get else None,
            host=get.get("addr", "127.0.0.1"),
            expect_status=int(get.get("status", 200)),
            expect_body=get.get("body"),
            host_header=get.get("host"),
            timeout=float(get.get("timeout", 5)),
            retries=int(get.get("retries", 5)),
            interval=float(get.get("interval", 2)),
        )
    except ValueError:
        return None


def probe_url(spec: SmokeCheckSpec, published: list[dict[str, Any]]) -> str | None:
    """The URL to probe: the explicit one, else the published port of the checked port."""
    if spec.url:
        return spec.url
    for port in published:
        wanted = spec.port is None or port.get("TargetPort") == spec.port
        if wanted and port.get("PublishedPort"):
            return f"http://{spec.host}:{port['PublishedPort']}{spec.path}"
    return None


async def run_check(spec: SmokeCheckSpec, url: str) -> CheckResult:
    headers = {"Host": spec.host_header} if spec.host_header else {}
    detail = "not probed"
    async with httpx.AsyncClient(timeout=spec.timeout, follow_redirects=False) as client:
        for attempt in range(1, spec.retries + 1):
            try:
                reply = await client.get(url, headers=headers)
                body = reply.text[:500]
                if reply.status_code == spec.expect_status and (
                    spec.expect_body is None or spec.expect_body in body
                ):
                    return CheckResult(True, f"GET {url} → {reply.status_code}")
                detail = f"GET {url} → {reply.status_code}: {body.strip()[:200]!r}"
                if spec.expect_body is not None and reply.status_code == spec.expect_status:
                    detail += f" (expected body to contain {spec.expect_body!r})"
            except httpx.HTTPError as exc:
                detail = f"GET {url} → {exc.__class__.__name__}: {exc}"
            if attempt < spec.retries:
                await asyncio.sleep(spec.interval)
    return CheckResult(False, f"smoke check failed after {spec.retries} tries: {detail}")
