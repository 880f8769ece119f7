import pytest

from autodock.models import DeployResult, DeployStatus, PlannedDeploy, PushEvent
from autodock.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "a.db")
    yield s
    s.close()


def planned(target="svc", kind="service", **action):
    return PlannedDeploy("r", kind, target, f"{kind}:{target}", {"service": target, **action})


def record(store, tag="stage", digest=None, delivery=None, targets=("svc",), now=100.0, window=60):
    event = PushEvent("test", "org/app", tag, digest=digest, delivery_id=delivery)
    return store.record_event(
        event, [planned(t) for t in targets], payload=None, now=now, dedup_window=window
    )


def test_ignored_when_nothing_planned(store):
    rec = record(store, targets=())
    assert rec.status == "ignored" and rec.deploy_ids == []
    assert store.list_events()[0]["status"] == "ignored"


def test_redelivery_is_stored_once(store):
    a = record(store, delivery="registry:1")
    b = record(store, delivery="registry:1", now=5000)
    assert (b.status, b.event_id) == ("duplicate", a.event_id)
    c = record(store, digest="sha256:" + "1" * 64, now=200)
    d = record(store, digest="sha256:" + "1" * 64, now=230)
    e = record(store, digest="sha256:" + "1" * 64, now=400)  # outside the window
    assert d.status == "duplicate" and d.event_id == c.event_id
    assert e.status == "accepted"
    assert store.counts()["events"] == 3


def test_newer_push_supersedes_queued(store):
    first = record(store).deploy_ids[0]
    second = record(store, tag="stage2").deploy_ids[0]
    old = store.get_deploy(first)
    assert old.status is DeployStatus.SUPERSEDED and old.superseded_by == second


def test_claim_serializes_a_target(store):
    a = record(store).deploy_ids[0]
    job = store.claim("w1", 30, now=101)
    assert job.id == a and job.attempts == 1 and job.status is DeployStatus.RUNNING
    b = record(store, tag="v2").deploy_ids[0]
    assert store.claim("w2", 30, now=102) is None  # the target is busy
    store.finish(a, "w1", DeployResult(DeployStatus.SUCCEEDED, new_image="x"), now=103)
    assert store.claim("w2", 30, now=104).id == b
    other = record(store, targets=("other",)).deploy_ids[0]
    assert store.claim("w3", 30, now=105).id == other  # independent targets run in parallel


def test_finish_only_by_lease_owner(store):
    a = record(store).deploy_ids[0]
    store.claim("w1", 30, now=101)
    store.finish(a, "intruder", DeployResult(DeployStatus.FAILED), now=102)
    assert store.get_deploy(a).status is DeployStatus.RUNNING


def test_retry_later_and_supersede_on_retry(store):
    a = record(store).deploy_ids[0]
    store.claim("w1", 30, now=101)
    store.retry_later(a, "w1", not_before=200, error="engine down")
    assert store.claim("w1", 30, now=150) is None
    assert store.next_due() == 200
    assert store.claim("w1", 30, now=201).attempts == 2
    b = record(store, tag="v3").deploy_ids[0]
    store.retry_later(a, "w1", not_before=300, error="engine down")
    assert store.get_deploy(a).status is DeployStatus.SUPERSEDED
    assert store.get_deploy(a).superseded_by == b


def test_recover_requeues_services_and_fails_commands(store):
    event = PushEvent("test", "org/app", "t")
    ids = store.record_event(
        event,
        [
            planned("svc"),
            PlannedDeploy("r", "command", "cmd", "command:x", {"argv": ["x"]}),
            PlannedDeploy("r", "command", "idem", "command:y", {"argv": ["y"], "idempotent": True}),
        ],
        payload=None,
        now=1,
        dedup_window=0,
    ).deploy_ids
    for _ in ids:
        store.claim("w", 10, now=2)
    assert store.recover(now=5) == []  # leases still valid
    assert sorted(store.recover(now=50)) == sorted(ids)
    svc, cmd, idem = (store.get_deploy(i) for i in ids)
    assert svc.status is DeployStatus.QUEUED and idem.status is DeployStatus.QUEUED
    assert cmd.status is DeployStatus.FAILED and "interrupted" in cmd.error


def test_list_filters_and_pagination(store):
    from autodock.store import DeployFilter

    for i in range(5):
        record(store, tag=f"t{i}", targets=(f"s{i % 2}",))
    assert [d.target for d in store.list_deploys(DeployFilter(target="s0"))] == ["s0"] * 3
    page = store.list_deploys(DeployFilter(limit=2))
    rest = store.list_deploys(DeployFilter(limit=10, before_id=page[-1].id))
    assert len(page) == 2 and len(rest) == 3 and rest[0].id < page[-1].id


def test_store_survives_reopen(tmp_path):
    s = SQLiteStore(tmp_path / "a.db")
    record(s)
    s.close()
    again = SQLiteStore(tmp_path / "a.db")
    assert again.counts()["deploys_queued"] == 1
    again.close()
