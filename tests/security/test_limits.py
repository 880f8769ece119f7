"""Body size, slow bodies, queued work per source, and a store that cannot write: every
refusal is a clear 4xx/503, and nothing half-accepted stays behind."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from autodock.config import Config
from tests.support.hooks import CATCH_ALL_RULES

BODY = json.dumps({"repo": "org/app", "tag": "stage"}).encode()


def counts(h) -> tuple[int, int]:
    db = sqlite3.connect(h.config.db_target)
    try:
        return (
            db.execute("SELECT count(*) FROM events").fetchone()[0],
            db.execute("SELECT count(*) FROM deploys").fetchone()[0],
        )
    finally:
        db.close()


def test_default_body_limit_is_one_mib():
    assert Config().max_body_bytes == 1024 * 1024


def test_oversized_bodies_get_413_declared_or_streamed(harness):
    h = harness(auth="none")
    c = h.client()
    padding = " " * (1024 * 1024)
    big = json.dumps({"repo": "org/app", "tag": "stage", "pad": padding}).encode()
    declared = c.post("/hooks/generic", content=big)
    assert declared.status_code == 413 and "1048576" in declared.json()["error"]

    async def chunks():  # no Content-Length: refused once the stream passes the limit
        for _ in range(40):
            yield b" " * 65536

    streamed = c.post("/hooks/generic", content=chunks())
    assert streamed.status_code == 413
    just_under = BODY + b" " * (1024 * 1024 - len(BODY))
    assert c.post("/hooks/generic", content=just_under).status_code == 202
    assert counts(h) == (1, 2)


def test_slow_body_gets_408(harness):
    h = harness(auth="none", body_timeout=0.3)
    c = h.client()

    async def trickle():
        yield BODY[:5]
        await asyncio.sleep(2)
        yield BODY[5:]

    reply = c.post("/hooks/generic", content=trickle())
    assert reply.status_code == 408
    assert counts(h) == (0, 0)


def test_queued_work_per_source_is_bounded(harness):
    h = harness(auth="none", max_queued_per_source=3, rules=[CATCH_ALL_RULES[1]])
    c = h.client()
    for i in range(3):
        body = json.dumps({"repo": "org/app", "tag": f"t{i}"}).encode()
        assert c.post("/hooks/generic", content=body).status_code == 202
    full = c.post("/hooks/generic", content=json.dumps({"repo": "org/app", "tag": "t9"}))
    assert full.status_code == 429 and full.headers["retry-after"]
    assert "max_queued_per_source" in full.json()["error"]
    registry = {
        "events": [
            {
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "repository": "org/app",
                    "tag": "t9",
                },
            }
        ]
    }
    other = c.post("/hooks/registry", content=json.dumps(registry))
    assert other.status_code == 202  # another source has its own budget
    assert counts(h) == (4, 4)


def test_full_store_answers_503_and_keeps_nothing(harness):
    h = harness(auth="none")
    c = h.client()
    assert c.post("/hooks/generic", content=BODY).status_code == 202
    store = h.ctx.store
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite now reports "disk full"
    refused = 0
    for i in range(20):
        body = json.dumps({"repo": f"org/app{i}", "tag": "x" * 120, "pad": "p" * 4000})
        reply = c.post("/hooks/generic", content=body)
        assert reply.status_code in (202, 503), reply.text
        if reply.status_code == 503:
            refused += 1
            assert reply.headers["retry-after"] == "5"
            assert "durably" in reply.json()["error"]
    assert refused > 0
    events, _ = counts(h)
    assert events == 21 - refused  # each 2xx is stored; nothing refused was kept
    store._db.execute("PRAGMA max_page_count = 1073741823")
    assert c.post("/hooks/generic", content=BODY).status_code == 202  # recovers by itself


def test_unwritable_store_is_503_not_500(harness, monkeypatch):
    from autodock.exceptions import StoreUnavailable

    h = harness(auth="none")

    def down(*args, **kwargs):
        raise StoreUnavailable("store is not writable: attempt to write a readonly database")

    monkeypatch.setattr(h.ctx.store, "count_queued", down)
    monkeypatch.setattr(h.ctx.store, "record_event", down)
    monkeypatch.setattr(h.ctx.store, "record_events", down)  # intake records in batches
    reply = h.client().post("/hooks/generic", content=BODY)
    assert reply.status_code == 503 and reply.headers["retry-after"] == "5"
