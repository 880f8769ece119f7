"""kill -9 during a burst of 200 acknowledged events to distinct targets: after a restart
every acknowledged event reaches a final state and every action ran at most once —
exactly once for each succeeded deploy; interrupted ones are recorded as such."""

from __future__ import annotations

import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.e2e

EVENTS = 200
APPEND = 'sleep 0.2; echo "$1" >> "$0"'


def test_kill9_during_a_200_event_burst(autodock, tmp_path, unique):
    out = tmp_path / "ran.txt"
    out.touch()
    server = autodock(
        {
            "workers": 4,
            "discovery": {"labels": False},
            "rules": [
                {
                    "name": "append",
                    "repo": f"burst/{unique}-*",
                    "command": ["sh", "-c", APPEND, str(out), "${repository.repo_name}"],
                }
            ],
        }
    )

    def send(i: int) -> int:
        reply = server.post("/hooks/generic", {"repo": f"burst/{unique}-{i}", "tag": "v1"})
        assert reply.status_code == 202, reply.text
        return int(reply.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        acked = list(pool.map(send, range(EVENTS)))
    server.kill9()
    assert len(set(acked)) == EVENTS
    db = sqlite3.connect(server.db)
    pending = db.execute(
        "SELECT count(*) FROM deploys WHERE status IN ('queued','running')"
    ).fetchone()[0]
    db.close()
    assert pending > 0, "the kill came too late to prove anything"

    server.start()
    deploys = server.wait_final(EVENTS, timeout=150)
    assert sorted(d["event_id"] for d in deploys) == sorted(acked)  # one deploy per event
    lines = Counter(out.read_text().splitlines())
    assert not [line for line, n in lines.items() if n > 1], "an action ran twice"
    succeeded = {d["repo"] for d in deploys if d["status"] == "succeeded"}
    failed = [d for d in deploys if d["status"] == "failed"]
    assert all(d["error"].startswith("interrupted") for d in failed), failed
    assert all(lines[repo] == 1 for repo in succeeded), "a succeeded action left no line"
    assert set(lines) <= succeeded | {d["repo"] for d in failed}, "a line nobody accounts for"
    assert len(succeeded) + len(failed) == EVENTS
    assert len(failed) <= 4  # only what was running at the kill (4 workers)
