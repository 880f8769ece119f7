"""The store's disk fills up: intake answers 503 (never a 2xx it cannot keep), deploys that
finish meanwhile keep their outcome (the worker waits for the store), intake recovers
by itself when space returns, and every acknowledged event survives a kill -9."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def small_disk(tmp_path: Path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> None:
    with path.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)


def test_full_disk_gets_503_and_loses_nothing_acknowledged(autodock, small_disk, unique):
    server = autodock(
        {
            "data_dir": str(small_disk / "data"),
            "discovery": {"labels": False},
            "workers": 2,
            "rules": [{"repo": f"disk/{unique}-*", "command": ["sleep", "0.5"]}],
        }
    )
    pad = "x" * 60_000
    acked: dict[str, int] = {}
    refused: list[str] = []

    def push(i: int) -> int:
        repo = f"disk/{unique}-{i}"
        reply = server.post("/hooks/generic", {"repo": repo, "tag": "v1", "pad": pad})
        assert reply.status_code in (202, 503), reply.text
        if reply.status_code == 202:
            acked[repo] = reply.json()["id"]
        else:
            assert reply.headers["retry-after"]
            refused.append(repo)
        return reply.status_code

    for i in range(5):
        assert push(i) == 202
    fill(small_disk / "filler")
    codes = [push(i) for i in range(5, 60)]
    assert 503 in codes, "the disk never filled up"
    time.sleep(1.5)  # deploys that were running finish while the disk is still full
    (small_disk / "filler").unlink()
    assert push(100) == 202  # space is back: accepted again, no restart needed
    # The worker lived through it: every acknowledged deploy finishes without a restart.
    done = server.wait_final(len(acked), timeout=60)
    assert {d["repo"] for d in done} == set(acked)
    assert all(d["status"] == "succeeded" for d in done), done

    server.kill9()
    db = sqlite3.connect(small_disk / "data" / "autodock.db")
    stored = {r[0]: r[1] for r in db.execute("SELECT repo, id FROM events")}
    db.close()
    assert stored == acked, "an acknowledged event is missing, or a refused one was kept"
    assert not set(refused) & set(stored)
    server.start()
    deploys = server.wait_final(len(acked), timeout=60)
    assert {d["repo"] for d in deploys} == set(acked)
