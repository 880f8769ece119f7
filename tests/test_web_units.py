"""Fast checks without Docker: pauses in the store's claim, retry re-queueing, token
comparison, the broadcaster, and the ``api:`` config section."""

from __future__ import annotations

import asyncio
import threading

import pytest

from autodock.config import parse_config_text
from autodock.exceptions import ConfigError
from autodock.models import DeployResult, DeployStatus, PlannedDeploy, PushEvent
from autodock.store.sqlite import SQLiteStore
from autodock.web.auth import TokenChecker
from autodock.web.events import Broadcaster, PublishingStore


def planned(service: str, rule: str = "r") -> PlannedDeploy:
    return PlannedDeploy(rule, "service", service, f"service:{service}", {"service": service})


def push(store, service: str, digest: str, rule: str = "r", now: float = 1.0) -> int:
    event = PushEvent(source="generic", repo="org/app", tag="stage", digest=digest)
    recorded = store.record_event(
        event, [planned(service, rule)], payload=None, now=now, dedup_window=0
    )
    return recorded.deploy_ids[0]


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "a.db")
    yield s
    s.close()


def test_a_paused_service_holds_its_deploys_and_resume_releases_the_latest(store):
    store.pause("service:web", reason="maintenance", by="me", now=1.0)
    first = push(store, "web", "sha256:" + "1" * 64)
    latest = push(store, "web", "sha256:" + "2" * 64)
    other = push(store, "db", "sha256:" + "3" * 64)
    assert store.claim("w", 30, 10.0).id == other  # only the unpaused target runs
    assert store.claim("w", 30, 10.0) is None
    assert store.next_due() is None  # the worker does not spin on held deploys
    assert store.get_deploy(first).status is DeployStatus.SUPERSEDED
    assert store.list_pauses()[0]["reason"] == "maintenance"
    assert store.resume("service:web") and not store.resume("service:web")
    assert store.claim("w", 30, 10.0).id == latest


def test_a_paused_rule_holds_but_manual_rollbacks_run(store):
    store.pause("rule:r", reason=None, by=None, now=1.0)
    push(store, "web", "sha256:" + "1" * 64, rule="r")
    rollback = push(store, "web", "sha256:" + "2" * 64, rule="manual:rollback")
    store.pause("service:web", reason=None, by=None, now=1.0)
    assert store.claim("w", 30, 10.0).id == rollback


def test_requeue_makes_a_new_deploy_of_the_same_event_and_target(store):
    deploy_id = push(store, "web", "sha256:" + "1" * 64)
    job = store.claim("w", 30, 2.0)
    store.finish(job.id, "w", DeployResult(DeployStatus.FAILED, error="boom"), 3.0)
    new_id = store.requeue(deploy_id, 4.0)
    again = store.get_deploy(new_id)
    assert new_id != deploy_id and again.status is DeployStatus.QUEUED
    assert (again.event_id, again.target_key, again.rule) == (job.event_id, job.target_key, "r")
    assert store.requeue(9999, 4.0) is None
    store.finish(store.claim("w", 30, 5.0).id, "w", DeployResult(DeployStatus.SUCCEEDED), 6.0)
    assert store.last_successes() == {"web": 6.0}


def test_token_checker_accepts_only_the_exact_bearer_token():
    checker = TokenChecker("s3cret")
    assert checker.check("Bearer s3cret") and checker.check("bearer  s3cret ")
    assert checker.check(None, "s3cret")  # ?token= for EventSource
    for bad in (None, "", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Basic czNjcmV0"):
        assert not checker.check(bad)
    assert not TokenChecker(None).configured and not TokenChecker(None).check("Bearer x")


def test_broadcaster_delivers_messages_published_from_threads(tmp_path):
    async def main() -> list[str]:
        broadcaster = Broadcaster(queue_size=4)
        store = PublishingStore(SQLiteStore(tmp_path / "b.db"), broadcaster)
        async with broadcaster.subscribe() as queue:
            thread = threading.Thread(target=push, args=(store, "web", "sha256:" + "1" * 64))
            thread.start()
            thread.join()
            first = await asyncio.wait_for(queue.get(), 5)
            for i in range(10):  # a slow subscriber gets a resync, publishing never blocks
                broadcaster.publish("deploy", {"id": i})
            kinds = [first.kind] + [queue.get_nowait().kind for _ in range(queue.qsize())]
        store.close()
        assert broadcaster.subscribers == 0
        return kinds

    kinds = asyncio.run(main())
    assert kinds[0] == "event" and "resync" in kinds and len(kinds) <= 5


def test_api_config_section():
    cfg = parse_config_text("api:\n  token_env: MY_TOKEN\n  read: token\n")
    assert cfg.api.read == "token" and cfg.api.token_env == "MY_TOKEN"
    assert parse_config_text("{}\n").api.read == "open"
    with pytest.raises(ConfigError) as err:
        parse_config_text("rules: []\napi:\n  read: token\n")
    assert err.value.problems[0][0] == 2  # the line of the api: section
