"""The outbox, on every backend: rows commit with the deploy result; per-deploy,
per-channel order; claims keep replicas sharing a database from sending a message twice.

The ``store`` fixture runs each test against a fresh SQLite file and a fresh PostgreSQL
database, like tests/store/test_contract.py; the test at the end is PostgreSQL-only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from autodock.models import DeployResult, DeployStatus, PlannedDeploy, PushEvent
from autodock.notify.records import NewNotification
from autodock.store import open_store
from autodock.store.outbox_sql import OutboxMixin

T0 = 1_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path) -> Iterator[OutboxMixin]:
    if request.param == "sqlite":
        target = str(tmp_path / "a.db")
    else:
        target = request.getfixturevalue("postgres_url")
    s = open_store(target)
    assert isinstance(s, OutboxMixin)
    yield s
    s.close()


def replica(store: OutboxMixin) -> OutboxMixin:
    """A second store on the same database: another replica (another lease owner)."""
    other = open_store(getattr(store, "url", None) or str(store.path))  # type: ignore[attr-defined]
    assert isinstance(other, OutboxMixin)
    return other


def queue_one(store, target: str = "svc") -> int:
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


# ------------------------------------------------------------------ more of the contract


def test_the_builder_sees_every_deploy_of_the_event(store):
    event = PushEvent(source="generic", repo="team/app", tag="stage")
    planned = [PlannedDeploy("r", "service", t, f"service:{t}", {"service": t}) for t in ("a", "b")]
    ids = store.record_event(event, planned, payload=None, now=T0, dedup_window=0).deploy_ids
    job = store.claim("me", 30, T0)
    seen = []

    def build(record, siblings):
        seen.append([(s.id, s.status) for s in siblings])
        return [note(record.id, "hook", "deploy.failed"), note(record.id, "chat", "x")]

    store.finish(job.id, "me", DeployResult(DeployStatus.FAILED, error="e"), T0 + 1, build)
    assert seen == [[(ids[0], DeployStatus.FAILED), (ids[1], DeployStatus.QUEUED)]]
    rows = store.list_notifications(deploy_id=job.id)
    assert [(n.channel, n.created_at, n.next_attempt_at) for n in rows] == [
        ("chat", T0 + 1, T0 + 1),
        ("hook", T0 + 1, T0 + 1),
    ]
    assert rows[1].order_key == f"{job.id}:hook" and rows[1].attempts == 0


def test_finish_without_a_builder_writes_nothing(store):
    queue_one(store)
    job = store.claim("me", 30, T0)
    store.finish(job.id, "me", DeployResult(DeployStatus.SUCCEEDED), T0)
    assert store.get_deploy(job.id).status == DeployStatus.SUCCEEDED
    assert store.list_notifications() == [] and store.notification_counts() == {}
    assert store.next_notification_due() is None


def test_attempts_move_a_message_through_pending_sent_and_dead(store):
    a = queue_one(store)
    store.enqueue_notifications([note(a, "hook", "e1"), note(a, "slack", "e2")], T0)
    first, second = store.due_notifications(T0, 10)
    store.notification_attempted(first.id, "pending", T0 + 1, next_attempt_at=T0 + 9, error="503")
    assert store.due_notifications(T0 + 8, 10, exclude=[second.id]) == []
    (again,) = store.due_notifications(T0 + 9, 10, exclude=[second.id])
    assert (again.id, again.attempts, again.last_error, again.sent_at) == (first.id, 1, "503", None)
    store.notification_attempted(first.id, "sent", T0 + 10)
    store.notification_attempted(second.id, "dead", T0 + 10, error="404")
    got = {n.id: n for n in store.list_notifications()}
    sent, dead = got[first.id], got[second.id]
    assert (sent.status, sent.attempts, sent.sent_at, sent.last_error) == ("sent", 2, T0 + 10, None)
    assert sent.next_attempt_at == T0 + 9  # no new time given: kept
    assert (dead.status, dead.attempts, dead.sent_at, dead.last_error) == ("dead", 1, None, "404")
    assert store.due_notifications(T0 + 100, 10) == []
    assert store.next_notification_due() is None
    assert store.notification_counts() == {"sent": 1, "dead": 1}


def test_listing_filters_and_limits_newest_first(store):
    a, b = queue_one(store, "a"), queue_one(store, "b")
    store.enqueue_notifications(
        [note(a, "hook", "e1"), note(b, "hook", "e2"), note(a, "hook", "e3")], T0
    )
    every = store.list_notifications()
    assert [n.event for n in every] == ["e3", "e2", "e1"]
    assert [n.event for n in store.list_notifications(deploy_id=a)] == ["e3", "e1"]
    assert [n.event for n in store.list_notifications(limit=1)] == ["e3"]
    store.notification_attempted(every[2].id, "sent", T0)
    assert [n.event for n in store.list_notifications(status="pending", deploy_id=a)] == ["e3"]
    assert [n.event for n in store.list_notifications(status="sent")] == ["e1"]
    assert store.notification_counts() == {"pending": 2, "sent": 1}


def test_a_claimed_message_is_hidden_from_other_replicas_until_recorded(store):
    a = queue_one(store, "a")
    store.enqueue_notifications([note(a, "hook", "e1"), note(a, "hook", "e2")], T0)
    other = replica(store)
    try:
        (mine,) = store.due_notifications(T0, 10, lease=60)
        assert other.due_notifications(T0 + 1, 10) == []  # claimed; e2 waits behind it
        assert [n.id for n in store.due_notifications(T0 + 1, 10)] == [mine.id]  # own claim
        store.notification_attempted(mine.id, "sent", T0 + 2)
        (theirs,) = other.due_notifications(T0 + 3, 10)
        assert theirs.event == "e2"
        assert store.due_notifications(T0 + 3, 10) == []
    finally:
        other.close()


def test_an_expired_claim_frees_the_message_and_the_stale_attempt_is_ignored(store):
    a = queue_one(store, "a")
    store.enqueue_notifications([note(a, "hook", "e1")], T0)
    other = replica(store)
    try:
        (mine,) = store.due_notifications(T0, 10, lease=60)
        assert other.due_notifications(T0 + 59, 10) == []
        (theirs,) = other.due_notifications(T0 + 60, 10, lease=60)  # the first replica died
        assert theirs.id == mine.id
        # the first replica comes back and records its stale attempt: ignored
        store.notification_attempted(mine.id, "pending", T0 + 61, next_attempt_at=T0 + 62)
        assert store.due_notifications(T0 + 70, 10) == []
        other.notification_attempted(theirs.id, "sent", T0 + 71)
        (row,) = store.list_notifications()
        assert (row.status, row.attempts, row.sent_at) == ("sent", 1, T0 + 71)
    finally:
        other.close()


# ------------------------------------------------------------------ PostgreSQL: replicas


def test_postgres_replicas_polling_at_once_never_hand_out_a_message_twice(postgres_url):
    """Two stores (replicas), each with a sender like ``OutboxSender``: one poller that
    claims due messages (its own in flight excluded) and hands them to a pool that
    "sends" and records them. While a message is in flight no replica gets it again,
    every message is sent exactly once, and per deploy and channel the messages go out
    one at a time, in id order."""
    from autodock.store.postgres import PostgresStore

    replicas = [PostgresStore(postgres_url, max_size=6) for _ in range(2)]
    try:
        deploys = [queue_one(replicas[0], f"t{i}") for i in range(6)]
        items = [
            note(d, channel, f"e{k}") for k in range(5) for d in deploys for channel in ("a", "b")
        ]
        replicas[0].enqueue_notifications(items, T0)
        lock = threading.Lock()
        in_flight: set[int] = set()  # across both replicas
        keys_in_flight: set[str] = set()
        sent: list[tuple[str, int]] = []
        sent_by = {id(s): 0 for s in replicas}
        problems: list[str] = []

        def send(s: PostgresStore, mine: set[int], msg) -> None:
            time.sleep(0.003)  # the HTTP request
            with lock:
                in_flight.discard(msg.id)
                keys_in_flight.discard(msg.order_key)
                sent.append((msg.order_key, msg.id))
                sent_by[id(s)] += 1
            s.notification_attempted(msg.id, "sent", time.time())
            with lock:
                mine.discard(msg.id)

        def sender(s: PostgresStore, pool: ThreadPoolExecutor) -> None:
            mine: set[int] = set()
            idle = 0
            while idle < 40:
                with lock:
                    exclude = list(mine)
                due = s.due_notifications(time.time(), 4, exclude, lease=60)
                idle = 0 if due or exclude else idle + 1
                for msg in due:
                    with lock:
                        if msg.id in in_flight:
                            problems.append(f"message {msg.id} handed out twice")
                        if msg.order_key in keys_in_flight:
                            problems.append(f"{msg.order_key}: two messages at once")
                        in_flight.add(msg.id)
                        keys_in_flight.add(msg.order_key)
                        mine.add(msg.id)
                    pool.submit(send, s, mine, msg)
                time.sleep(0.002)

        with ThreadPoolExecutor(8) as pool, ThreadPoolExecutor(2) as pollers:
            for f in [pollers.submit(sender, s, pool) for s in replicas]:
                f.result()
        assert problems == []
        assert len(sent) == len(items) == 60
        assert all(sent_by.values()), sent_by  # both replicas took part
        assert sorted(i for _, i in sent) == sorted(
            n.id for n in replicas[1].list_notifications(limit=100)
        )
        for key in {k for k, _ in sent}:
            ids = [i for k, i in sent if k == key]
            assert ids == sorted(ids), f"{key} sent out of order: {ids}"
        assert replicas[1].notification_counts() == {"sent": 60}
        assert set(_owners(postgres_url)) == {None}  # every lease ended
    finally:
        for s in replicas:
            s.close()


def _owners(url: str) -> list[object]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT lease_owner FROM outbox").fetchall()]
