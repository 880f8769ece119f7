"""A local stand-in for Slack and webhook receivers, speaking Slack's real response shapes.

- ``POST /services/...`` (incoming webhook): ``200 ok`` (text/html), like hooks.slack.com.
- ``POST /api/chat.postMessage``: ``{"ok": true, "channel": …, "ts": …}``, or
  ``{"ok": false, "error": "invalid_auth" | "channel_not_found"}``.
- anything else (generic webhooks, Docker Hub callbacks): ``200 {"ok": true}``.

Tests script failures per path with ``fail(path, status, body, headers)`` (served in
order before the normal answer), and can stop and restart the server on the same port
to play a dead endpoint.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeSlack", "Received"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int
    response: bytes = b""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeSlack:
    def __init__(self, port: int, *, token: str = "xoxb-test-token", channels=("#stagestatus",)):
        self.port = port
        self.token = token
        self.channels = set(channels)
        self.received: list[Received] = []
        self._scripts: dict[str, deque[tuple[int, str, dict[str, str]]]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, path: str, status: int, body: str = "", headers: dict | None = None, times=1):
        with self._lock:
            queue = self._scripts.setdefault(path, deque())
            for _ in range(times):
                queue.append((status, body, headers or {}))

    def requests(self, path: str | None = None, status: int | None = None) -> list[Received]:
        with self._lock:
            return [
                r
                for r in self.received
                if (path is None or r.path == path) and (status is None or r.status == status)
            ]

    def delivered(self, path: str) -> list[Received]:
        """Requests to ``path`` that were answered as a success."""
        out = []
        for r in self.requests(path):
            if r.status == 200 and (
                not path.endswith("chat.postMessage") or json.loads(r.response)["ok"]
            ):
                out.append(r)
        return out

    # ------------------------------------------------------------ server

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, text, headers, ctype = fake._answer(self.path, dict(self.headers), body)
                record = Received(
                    self.path, dict(self.headers), body, time.time(), status, text.encode()
                )
                with fake._lock:
                    fake.received.append(record)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                data = text.encode()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, dict[str, str], str]:
        with self._lock:
            queue = self._scripts.get(path)
            scripted = queue.popleft() if queue else None
        if scripted is not None:
            status, text, extra = scripted
            ctype = "application/json" if text.startswith("{") else "text/plain"
            return status, text, extra, ctype
        if path.startswith("/services/"):
            return 200, "ok", {}, "text/html"
        if path.endswith("/chat.postMessage"):
            auth = headers.get("Authorization") or headers.get("authorization") or ""
            if auth != f"Bearer {self.token}":
                return (
                    200,
                    json.dumps({"ok": False, "error": "invalid_auth"}),
                    {},
                    "application/json",
                )
            channel = json.loads(body).get("channel")
            if channel not in self.channels:
                answer = {"ok": False, "error": "channel_not_found"}
                return 200, json.dumps(answer), {}, "application/json"
            answer = {"ok": True, "channel": "C0123", "ts": f"{time.time():.6f}"}
            return 200, json.dumps(answer), {}, "application/json"
        return 200, json.dumps({"ok": True}), {}, "application/json"
