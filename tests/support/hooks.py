"""Helpers for security and fault tests: in-process apps on a temp store, auth headers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from typing import Any

import httpx

from autodock.config import Config
from autodock.server import build_context, create_app

CATCH_ALL_RULES = [
    {"name": "svc", "repo": ["*", "*/*", "*/*/*"], "tag": "*", "services": ["${repository.name}"]},
    {"name": "cmd", "repo": ["*", "*/*", "*/*/*"], "tag": "*", "command": ["true", "${image}"]},
]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def signature(secret: str, body: bytes, prefix: str = "sha256=") -> str:
    return prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Client:
    """A synchronous client over ``httpx.ASGITransport`` with a fixed peer address."""

    def __init__(self, app: Any, ip: str, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://autodock")

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, url, **kw))

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)


class Harness:
    def __init__(self, config: Config):
        self.config = config
        self.ctx = build_context(config)
        self.app = create_app(self.ctx, run_worker=False)
        self.loop = asyncio.new_event_loop()
        self.clients: list[Client] = []

    def client(self, ip: str = "127.0.0.1") -> Client:
        self.clients.append(Client(self.app, ip, self.loop))
        return self.clients[-1]

    def close(self) -> None:
        for c in self.clients:
            self.loop.run_until_complete(c.http.aclose())
        self.loop.close()
        self.ctx.store.close()
