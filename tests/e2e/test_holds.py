"""Holds on the real swarm: approvals (API and CLI), freezes, and deploy windows read
with an injectable clock."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from autodock.config import parse_config_text
from autodock.executors.swarm import DockerConnection, SwarmExecutor
from autodock.models import DeployStatus, PushEvent
from autodock.planner import plan
from autodock.store.sqlite import SQLiteStore
from autodock.worker import Worker
from tests.support.lab import service_image, wait_for

pytestmark = pytest.mark.e2e
TOKEN = "holds-token-0123456789"


def api(server, method: str, path: str, token: str | None = TOKEN, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=10, **kw)


def cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTODOCK_API_TOKEN": TOKEN, "AUTODOCK_URL": server.url}
    argv = [sys.executable, "-m", "autodock.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def push(server, registry, repo: str, digest: str) -> int:
    body = {"repo": repo, "tag": "stage", "registry": registry.addr, "digest": digest}
    reply = server.post("/hooks/generic", body)
    assert reply.status_code == 202, reply.text
    return reply.json()["deploys"][0]


def test_approval_holds_a_push_until_someone_approves(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"e2e/approve-{unique}", f"approve_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    server = autodock(
        {
            "api": {"token": TOKEN},
            "discovery": {"labels": False},
            "rules": [
                {"name": "prod", "repo": repo, "tag": "stage", "approval": True, "services": [svc]}
            ],
        }
    )

    rejected = push(server, registry, repo, images.publish(repo, "stage"))
    assert server.deploys(target=svc)[0]["status"] == "awaiting_approval"
    assert (
        api(server, "POST", f"/api/v1/deploys/{rejected}/reject", token=None, json={}).status_code
        == 401
    )
    refused = cli(server, "reject", str(rejected), "--by", "ops")
    assert refused.returncode == 0, refused.stderr
    assert server.deploys(target=svc)[0]["status"] == "rejected"

    second = images.publish(repo, "stage")
    waiting = push(server, registry, repo, second)
    time.sleep(2)
    assert service_image(docker_client, svc).endswith(first)  # nothing ran without approval
    reply = api(server, "POST", f"/api/v1/deploys/{waiting}/approve", json={"by": "ann"})
    assert reply.status_code == 200, reply.text
    again = api(server, "POST", f"/api/v1/deploys/{waiting}/approve", json={"by": "ann"})
    assert again.status_code == 409
    deploy = server.wait_deploy_of(second, target=svc)
    assert deploy["status"] == "succeeded", deploy
    assert service_image(docker_client, svc).endswith(second)


def test_freeze_holds_pushes_and_the_latest_deploys_on_thaw(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"e2e/freeze-{unique}", f"freeze_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    server = autodock(
        {
            "api": {"token": TOKEN},
            "discovery": {"labels": False},
            "rules": [{"repo": repo, "tag": "stage", "services": [svc]}],
        }
    )
    on = cli(server, "freeze", "on", "--reason", "release day")
    assert on.returncode == 0 and "frozen: release day" in on.stdout, on.stderr
    digests = [images.publish(repo, "stage") for _ in range(2)]
    for digest in digests:
        push(server, registry, repo, digest)
    time.sleep(2)
    statuses = sorted(d["status"] for d in server.deploys(target=svc))
    assert statuses == ["queued", "superseded"]
    assert service_image(docker_client, svc).endswith(first)
    assert "not frozen" in cli(server, "freeze", "off").stdout
    assert server.wait_deploy_of(digests[-1], target=svc)["status"] == "succeeded"


def test_push_outside_the_window_deploys_when_it_opens(
    docker_client, registry, images, make_service, tmp_path, unique
):
    repo, svc = f"e2e/window-{unique}", f"window_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    config = parse_config_text(f"""
rules:
  - repo: {repo}
    tag: stage
    services: [{svc}]
    window: "* 9-16 * * mon-fri"   # office hours
    timezone: Europe/Berlin
""")
    now = [datetime(2026, 11, 27, 19, 30, tzinfo=UTC).timestamp()]  # Friday evening in Berlin
    store = SQLiteStore(tmp_path / "w.db")
    worker = Worker(store, {"service": SwarmExecutor(DockerConnection())}, clock=lambda: now[0])
    second = images.publish(repo, "stage")
    event = PushEvent("generic", repo, "stage", registry=registry.addr, digest=second)
    (deploy_id,) = store.record_event(
        event, plan(event, config), payload=None, now=now[0], dedup_window=0
    ).deploy_ids

    async def scenario() -> None:
        running = asyncio.create_task(worker.run())
        held = await _until(lambda: _progress(store, deploy_id, "held"))
        assert "until 2026-11-30 09:00 CET" in held  # Monday morning
        assert store.get_deploy(deploy_id).status is DeployStatus.QUEUED
        assert service_image(docker_client, svc).endswith(first)
        now[0] = datetime(2026, 11, 30, 8, 0, 30, tzinfo=UTC).timestamp()  # 09:00 in Berlin
        worker.wake()
        await _until(lambda: store.get_deploy(deploy_id).status.final, timeout=90)
        worker.stop()
        running.cancel()

    asyncio.run(scenario())
    record = store.get_deploy(deploy_id)
    assert record.status is DeployStatus.SUCCEEDED, record
    assert record.attempts == 1  # waiting for the window is not a failed try
    wait_for(lambda: service_image(docker_client, svc).endswith(second), what="deployed")
    store.close()


def _progress(store: SQLiteStore, deploy_id: int, prefix: str) -> str | None:
    progress = store.get_deploy(deploy_id).progress or ""
    return progress if progress.startswith(prefix) else None


async def _until(probe, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(probe)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("timed out")
