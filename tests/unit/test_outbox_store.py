"""The SQLite outbox: rows commit with the deploy result; per-deploy, per-channel order."""

from __future__ import annotations

import time

import pytest

from autodock.models import DeployResult, DeployStatus, PlannedDeploy, PushEvent
from autodock.notify.records import NewNotification
from autodock.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "a.db")
    yield s
    s.close()


def queue_one(store: SQLiteStore, target: str = "svc") -> int:
    event = PushEvent(source="generic", repo="team/app", tag="stage", callback_url="https://h/cb")
    planned = PlannedDeploy("r", "service", target, f"service:{target}", {"service": target})
    recorded = store.record_event(event, [planned], payload=None, now=time.time(), dedup_window=0)
    return recorded.deploy_ids[0]


def note(deploy_id: int, channel: str, event: str) -> NewNotification:
    return NewNotification(channel, "webhook", event, {"e": event}, deploy_id=deploy_id)


def test_finish_writes_outbox_rows_in_the_same_transaction(store):
    deploy_id = queue_one(store)
    job = store.claim("me", 30, time.time())
    seen = []

    def build(record, siblings):
        seen.append((record.status, [s.id for s in siblings]))
        return [note(record.id, "hook", "deploy.succeeded")]

    store.finish(job.id, "me", DeployResult(DeployStatus.SUCCEEDED), time.time(), build)
    assert seen == [(DeployStatus.SUCCEEDED, [deploy_id])]  # builder sees the new result
    (row,) = store.list_notifications()
    assert (row.deploy_id, row.channel, row.status, row.payload) == (
        deploy_id,
        "hook",
        "pending",
        '{"e":"deploy.succeeded"}',
    )


def test_a_failing_builder_rolls_back_the_result_too(store):
    queue_one(store)
    job = store.claim("me", 30, time.time())

    def broken(record, siblings):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.finish(job.id, "me", DeployResult(DeployStatus.SUCCEEDED), time.time(), broken)
    assert store.get_deploy(job.id).status == DeployStatus.RUNNING
    assert store.list_notifications() == []


def test_a_lost_lease_writes_no_notifications(store):
    queue_one(store)
    job = store.claim("me", 30, time.time())
    build = lambda r, s: [note(r.id, "hook", "deploy.succeeded")]  # noqa: E731
    store.finish(job.id, "someone-else", DeployResult(DeployStatus.SUCCEEDED), time.time(), build)
    assert store.list_notifications() == []


def test_due_messages_wait_for_earlier_ones_of_the_same_deploy_and_channel(store):
    a, b = queue_one(store, "a"), queue_one(store, "b")
    now = time.time()
    store.enqueue_notifications(
        [
            note(a, "hook", "deploy.started"),
            note(a, "hook", "deploy.succeeded"),
            note(a, "slack", "deploy.succeeded"),
            note(b, "hook", "deploy.failed"),
        ],
        now,
    )
    due = store.due_notifications(now, 10)
    assert [(n.deploy_id, n.channel, n.event) for n in due] == [
        (a, "hook", "deploy.started"),
        (a, "slack", "deploy.succeeded"),
        (b, "hook", "deploy.failed"),
    ]
    first = due[0]
    store.notification_attempted(first.id, "pending", now, next_attempt_at=now + 60, error="500")
    # still pending: the later message of the same deploy and channel keeps waiting
    assert [n.event for n in store.due_notifications(now, 10) if n.channel == "hook"] == [
        "deploy.failed"
    ]
    assert store.next_notification_due() == pytest.approx(now)
    store.notification_attempted(first.id, "dead", now, error="gave up")
    events = [(n.deploy_id, n.event) for n in store.due_notifications(now, 10, exclude=[])]
    assert (a, "deploy.succeeded") in events
    assert store.notification_counts() == {"dead": 1, "pending": 3}
    assert [n.status for n in store.list_notifications(status="dead")] == ["dead"]
