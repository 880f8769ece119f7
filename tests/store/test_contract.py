"""One contract, every backend: SQLiteStore and PostgresStore behave the same.

The ``store`` fixture runs each test against a fresh SQLite file and a fresh PostgreSQL
database (a throwaway cluster, see tests/support/postgres.py). The tests at the end are
PostgreSQL-only: what several replicas sharing one database need on top.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from autodock.exceptions import StoreUnavailable
from autodock.models import DeployResult, DeployStatus, PlannedDeploy, PushEvent
from autodock.store import DeployFilter, Store, open_store
from autodock.store.migrations import DIALECTS, migration_scripts
from tests.support.lab import free_port

T0 = 1_000_000.0
WINDOW = 300.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path) -> Iterator[Store]:
    if request.param == "sqlite":
        target = str(tmp_path / "store.db")
    else:
        target = request.getfixturevalue("postgres_url")
    s = open_store(target)
    yield s
    s.close()


def ev(
    repo: str = "org/app",
    tag: str = "stage",
    *,
    digest: str | None = None,
    delivery: str | None = None,
    pushed_at: float | None = None,
    registry: str | None = "reg.example:5000",
) -> PushEvent:
    return PushEvent(
        source="generic",
        repo=repo,
        tag=tag,
        registry=registry,
        digest=digest,
        pusher="ci",
        pushed_at=pushed_at,
        delivery_id=delivery,
    )


def svc(name: str, rule: str = "r1") -> PlannedDeploy:
    return PlannedDeploy(
        rule=rule,
        kind="service",
        target=name,
        target_key=f"service:{name}",
        action={"service": name, "image": None, "timeout": 30.0},
    )


def cmd(name: str, *, idempotent: bool = False) -> PlannedDeploy:
    return PlannedDeploy(
        rule="cmd",
        kind="command",
        target=name,
        target_key=f"command:{name}",
        action={"argv": ["true"], "timeout": 5.0, "cwd": None, "idempotent": idempotent},
    )


def record(store: Store, event: PushEvent, planned: list[PlannedDeploy], now: float = T0):
    return store.record_event(event, planned, payload="{}", now=now, dedup_window=WINDOW)


def status(store: Store, deploy_id: int) -> DeployStatus:
    rec = store.get_deploy(deploy_id)
    assert rec is not None
    return rec.status


# ------------------------------------------------------------------ record + dedup


def test_record_stores_event_and_queues_deploys(store):
    got = record(store, ev(digest="sha256:a"), [svc("web", "r2"), svc("api", "r1")])
    assert got.status == "accepted"
    assert got.matched_rules == ["r1", "r2"]
    assert len(got.deploy_ids) == 2
    web = store.get_deploy(got.deploy_ids[0])
    assert web is not None
    assert (web.event_id, web.target, web.kind, web.status) == (
        got.event_id,
        "web",
        "service",
        DeployStatus.QUEUED,
    )
    assert (web.repo, web.tag, web.digest, web.registry, web.pusher, web.source) == (
        "org/app",
        "stage",
        "sha256:a",
        "reg.example:5000",
        "ci",
        "generic",
    )
    assert web.action == {"service": "web", "image": None, "timeout": 30.0}
    assert web.attempts == 0 and web.created_at == T0
    (event,) = store.list_events()
    assert event["id"] == got.event_id and event["matched_rules"] == ["r1", "r2"]
    assert event["status"] == "accepted" and event["received_at"] == T0


def test_event_without_rules_is_kept_as_ignored(store):
    got = record(store, ev(), [])
    assert (got.status, got.matched_rules, got.deploy_ids) == ("ignored", [], [])
    assert store.list_events()[0]["status"] == "ignored"
    assert store.counts() == {"events": 1}


def test_redelivery_by_delivery_id_is_a_duplicate(store):
    first = record(store, ev(delivery="d-1"), [svc("web")])
    again = record(store, ev(delivery="d-1"), [svc("web")], now=T0 + 10_000)
    assert again.status == "duplicate"
    assert again.event_id == first.event_id and again.matched_rules == ["r1"]
    assert again.deploy_ids == []
    assert store.counts() == {"events": 1, "deploys_queued": 1}


def test_same_push_within_the_window_is_a_duplicate(store):
    first = record(store, ev(digest="sha256:a"), [svc("web")])
    by_digest = record(store, ev(digest="sha256:a"), [svc("web")], now=T0 + WINDOW - 1)
    assert (by_digest.status, by_digest.event_id) == ("duplicate", first.event_id)

    timed = record(store, ev(pushed_at=123.0), [svc("web")], now=T0 + 1)
    assert timed.status == "accepted"
    assert record(store, ev(pushed_at=123.0), [svc("web")], now=T0 + 2).event_id == timed.event_id


def test_push_outside_the_window_or_different_is_new(store):
    record(store, ev(digest="sha256:a"), [svc("web")])
    assert record(store, ev(digest="sha256:b"), [svc("web")], now=T0 + 1).status == "accepted"
    assert record(store, ev("org/x", digest="sha256:a"), [], now=T0 + 2).status == "ignored"
    assert record(store, ev(tag="prod", digest="sha256:a"), [], now=T0 + 3).status == "ignored"
    assert record(store, ev(digest="sha256:a", registry=None), [], now=T0 + 4).status == "ignored"
    late = record(store, ev(digest="sha256:a"), [svc("web")], now=T0 + WINDOW + 1)
    assert late.status == "accepted"
    # without a digest or a push time nothing identifies a push: never a duplicate
    assert record(store, ev(), [svc("web")], now=T0 + 5).status == "accepted"
    assert record(store, ev(), [svc("web")], now=T0 + 6).status == "accepted"
    no_window = store.record_event(
        ev(digest="sha256:b"), [svc("web")], payload=None, now=T0 + 7, dedup_window=0
    )
    assert no_window.status == "accepted"


# ------------------------------------------------------------------ coalescing


def test_newer_push_supersedes_queued_deploys_of_the_target(store):
    a = record(store, ev(digest="sha256:a"), [svc("web"), svc("api")])
    b = record(store, ev(digest="sha256:b"), [svc("web")], now=T0 + 1)
    c = record(store, ev(digest="sha256:c"), [svc("web")], now=T0 + 2)
    web_a, api_a = a.deploy_ids
    first = store.get_deploy(web_a)
    second = store.get_deploy(b.deploy_ids[0])
    assert first is not None and second is not None
    assert (first.status, first.superseded_by, first.finished_at) == (
        DeployStatus.SUPERSEDED,
        b.deploy_ids[0],
        T0 + 1,
    )
    assert (second.status, second.superseded_by) == (DeployStatus.SUPERSEDED, c.deploy_ids[0])
    assert status(store, c.deploy_ids[0]) is DeployStatus.QUEUED
    assert status(store, api_a) is DeployStatus.QUEUED  # other targets are untouched


def test_running_deploy_is_not_superseded(store):
    a = record(store, ev(digest="sha256:a"), [svc("web")])
    job = store.claim("w1", 30, T0)
    assert job is not None and job.id == a.deploy_ids[0]
    b = record(store, ev(digest="sha256:b"), [svc("web")], now=T0 + 1)
    assert status(store, a.deploy_ids[0]) is DeployStatus.RUNNING
    assert status(store, b.deploy_ids[0]) is DeployStatus.QUEUED


# ------------------------------------------------------------------ claim


def test_claim_serializes_each_target_and_takes_oldest_first(store):
    a = record(store, ev("org/a", digest="sha256:1"), [svc("web")])
    b = record(store, ev("org/b", digest="sha256:2"), [svc("api")], now=T0 + 1)
    first = store.claim("w1", 30, T0 + 2)
    assert first is not None and first.id == a.deploy_ids[0]
    assert first.status is DeployStatus.RUNNING and first.attempts == 1
    assert first.started_at == T0 + 2
    c = record(store, ev("org/a", digest="sha256:3"), [svc("web")], now=T0 + 3)
    second = store.claim("w2", 30, T0 + 4)
    assert second is not None and second.id == b.deploy_ids[0]
    assert store.claim("w3", 30, T0 + 5) is None  # web runs; its newer deploy waits
    store.finish(first.id, "w1", DeployResult(DeployStatus.SUCCEEDED), T0 + 6)
    third = store.claim("w3", 30, T0 + 7)
    assert third is not None and third.id == c.deploy_ids[0]
    assert store.claim("w1", 30, T0 + 8) is None


def test_heartbeat_and_finish_need_the_owner(store):
    a = record(store, ev(), [svc("web")])
    job = store.claim("w1", 30, T0)
    assert job is not None
    assert store.heartbeat(job.id, "w1", T0 + 60) is True
    assert store.heartbeat(job.id, "intruder", T0 + 60) is False
    store.finish(job.id, "intruder", DeployResult(DeployStatus.FAILED, error="no"), T0 + 1)
    assert status(store, job.id) is DeployStatus.RUNNING
    store.set_progress(job.id, "1/2 tasks updated")
    assert store.get_deploy(job.id).progress == "1/2 tasks updated"
    big = "x" * (200 * 1024)
    result = DeployResult(
        DeployStatus.SUCCEEDED, old_image="img@sha256:old", new_image="img@sha256:new", output=big
    )
    store.finish(job.id, "w1", result, T0 + 2)
    done = store.get_deploy(a.deploy_ids[0])
    assert done is not None
    assert (done.status, done.old_image, done.new_image) == (
        DeployStatus.SUCCEEDED,
        "img@sha256:old",
        "img@sha256:new",
    )
    assert done.output is not None and len(done.output) < 70 * 1024
    assert done.output.startswith("…(truncated)…") and done.duration == 2
    assert store.heartbeat(job.id, "w1", T0 + 90) is False


# ------------------------------------------------------------------ retry_later


def test_retry_later_requeues_after_the_delay(store):
    a = record(store, ev(), [svc("web")])
    job = store.claim("w1", 30, T0)
    assert job is not None
    store.retry_later(job.id, "w1", T0 + 50, "engine unreachable")
    again = store.get_deploy(a.deploy_ids[0])
    assert again is not None
    assert (again.status, again.error, again.superseded_by) == (
        DeployStatus.QUEUED,
        "engine unreachable",
        None,
    )
    assert store.next_due() == T0 + 50
    assert store.claim("w1", 30, T0 + 49) is None
    retried = store.claim("w1", 30, T0 + 50)
    assert retried is not None and retried.id == job.id and retried.attempts == 2
    assert retried.error is None and retried.started_at == T0  # first start is kept


def test_retry_later_is_superseded_by_a_newer_push(store):
    a = record(store, ev(digest="sha256:a"), [svc("web")])
    job = store.claim("w1", 30, T0)
    assert job is not None
    b = record(store, ev(digest="sha256:b"), [svc("web")], now=T0 + 1)
    store.retry_later(job.id, "w1", T0 + 50, "engine unreachable")
    old = store.get_deploy(a.deploy_ids[0])
    assert old is not None
    assert (old.status, old.superseded_by) == (DeployStatus.SUPERSEDED, b.deploy_ids[0])
    assert old.finished_at is not None
    newer = store.claim("w1", 30, T0 + 2)
    assert newer is not None and newer.id == b.deploy_ids[0]


def test_next_due_is_none_without_queued_deploys(store):
    assert store.next_due() is None
    record(store, ev(), [svc("web")], now=T0)
    assert store.next_due() == 0


# ------------------------------------------------------------------ recover


def test_recover_releases_expired_leases_by_kind(store):
    service = record(store, ev("org/s"), [svc("web")]).deploy_ids[0]
    plain = record(store, ev("org/c"), [cmd("script")]).deploy_ids[0]
    idem = record(store, ev("org/i"), [cmd("safe", idempotent=True)]).deploy_ids[0]
    fresh = record(store, ev("org/f"), [svc("fresh")]).deploy_ids[0]
    for _ in range(3):
        assert store.claim("dead", 10, T0) is not None
    assert store.claim("alive", 100, T0) is not None

    recovered = store.recover(T0 + 11)
    assert sorted(recovered) == sorted([service, plain, idem])
    back = store.get_deploy(service)
    assert back is not None and back.status is DeployStatus.QUEUED
    assert back.error is not None and back.error.startswith("interrupted")
    assert status(store, idem) is DeployStatus.QUEUED
    failed = store.get_deploy(plain)
    assert failed is not None and failed.status is DeployStatus.FAILED
    assert failed.finished_at == T0 + 11 and "idempotent" in (failed.error or "")
    assert status(store, fresh) is DeployStatus.RUNNING
    assert store.recover(T0 + 12) == []
    assert store.heartbeat(service, "dead", T0 + 100) is False

    again = store.claim("w2", 30, T0 + 12)
    assert again is not None and again.id == service and again.attempts == 2
    assert sorted(store.recover(T0 + 13, all_running=True)) == sorted([service, fresh])
    assert status(store, fresh) is DeployStatus.QUEUED


def test_recovered_deploy_runs_before_a_newer_one(store):
    a = record(store, ev(digest="sha256:a"), [svc("web")]).deploy_ids[0]
    assert store.claim("dead", 10, T0) is not None
    b = record(store, ev(digest="sha256:b"), [svc("web")], now=T0 + 1).deploy_ids[0]
    assert store.recover(T0 + 20) == [a]
    first = store.claim("w", 30, T0 + 21)
    assert first is not None and first.id == a
    store.finish(a, "w", DeployResult(DeployStatus.UNCHANGED), T0 + 22)
    second = store.claim("w", 30, T0 + 23)
    assert second is not None and second.id == b


# ------------------------------------------------------------------ reading


def test_list_filters_and_pages(store):
    ids = []
    for i in range(7):
        repo = "org/even" if i % 2 == 0 else "org/odd"
        got = record(store, ev(repo, digest=f"sha256:{i}"), [svc(f"s{i}")], now=T0 + i)
        ids.extend(got.deploy_ids)
    job = store.claim("w", 30, T0 + 10)
    assert job is not None
    store.finish(job.id, "w", DeployResult(DeployStatus.FAILED, error="boom"), T0 + 11)

    everything = store.list_deploys(DeployFilter())
    assert [d.id for d in everything] == ids[::-1]
    assert [d.id for d in store.list_deploys(DeployFilter(target="s3"))] == [ids[3]]
    assert [d.id for d in store.list_deploys(DeployFilter(status="failed"))] == [ids[0]]
    assert [d.id for d in store.list_deploys(DeployFilter(repo="org/odd"))] == [
        ids[5],
        ids[3],
        ids[1],
    ]
    window = store.list_deploys(DeployFilter(since=T0 + 2, until=T0 + 5))
    assert [d.id for d in window] == [ids[4], ids[3], ids[2]]
    page1 = store.list_deploys(DeployFilter(limit=3))
    page2 = store.list_deploys(DeployFilter(limit=3, before_id=page1[-1].id))
    page3 = store.list_deploys(DeployFilter(limit=3, before_id=page2[-1].id))
    assert [d.id for d in page1 + page2 + page3] == ids[::-1]
    assert store.list_deploys(DeployFilter(target="nope")) == []
    combined = DeployFilter(repo="org/even", status="queued", limit=2)
    assert [d.id for d in store.list_deploys(combined)] == [ids[6], ids[4]]

    events = store.list_events(limit=3)
    assert [e["repo"] for e in events] == ["org/even", "org/odd", "org/even"]
    assert events[0]["id"] > events[1]["id"] > events[2]["id"]


def test_counts(store):
    record(store, ev(digest="sha256:a"), [svc("web"), svc("api")])
    record(store, ev(digest="sha256:b"), [svc("web")], now=T0 + 1)
    record(store, ev("org/none"), [], now=T0 + 2)
    record(store, ev(digest="sha256:b"), [svc("web")], now=T0 + 3)  # duplicate: not stored
    job = store.claim("w", 30, T0 + 4)
    assert job is not None
    assert store.counts() == {
        "events": 3,
        "deploys_running": 1,
        "deploys_queued": 1,
        "deploys_superseded": 1,
    }


def test_a_second_store_on_the_same_database_sees_everything(store):
    got = record(store, ev(delivery="keep"), [svc("web")])
    other = open_store(getattr(store, "url", None) or str(store.path))
    try:
        assert other.get_deploy(got.deploy_ids[0]) is not None
        assert record(other, ev(delivery="keep"), []).status == "duplicate"
    finally:
        other.close()


# ------------------------------------------------------------------ migrations


def test_every_dialect_ships_the_same_migrations():
    versions = {d: [(v, n) for v, n, _ in migration_scripts(d)] for d in DIALECTS}
    assert versions["sqlite"] == versions["postgres"]
    assert versions["sqlite"][0] == (1, "0001_init.sql")
    assert migration_scripts() == migration_scripts("sqlite")
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        migration_scripts("oracle")


# ------------------------------------------------------------------ PostgreSQL: replicas


def test_postgres_replicas_migrate_once_concurrently(postgres_url):
    from autodock.store.postgres import PostgresStore

    with ThreadPoolExecutor(6) as pool:
        stores = list(pool.map(lambda _: PostgresStore(postgres_url, max_size=2), range(6)))
    try:
        with psycopg.connect(postgres_url) as conn:
            rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
        assert rows == [
            (1, "0001_init.sql"),
            (2, "0002_outbox.sql"),
            (3, "0003_pauses.sql"),
            (4, "0004_outbox_lease.sql"),
        ]
    finally:
        for s in stores:
            s.close()


def test_postgres_unreachable_is_store_unavailable():
    from autodock.store.postgres import PostgresStore

    with pytest.raises(StoreUnavailable, match="cannot open store"):
        PostgresStore(f"postgresql://postgres@127.0.0.1:{free_port()}/x", connect_timeout=1)


def test_postgres_store_unavailable_when_the_database_goes_away(pg_cluster):
    from autodock.store.postgres import PostgresStore

    url = pg_cluster.url(pg_cluster.create_database())
    s = PostgresStore(url, max_size=1, connect_timeout=1)
    try:
        dbname = url.rsplit("/", 1)[1]
        with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')  # type: ignore[arg-type]
        with pytest.raises(StoreUnavailable):
            record(s, ev(), [svc("web")])
    finally:
        s.close()


def test_postgres_index_forbids_two_running_deploys_of_a_target(postgres_url):
    from autodock.store.postgres import PostgresStore

    s = PostgresStore(postgres_url)
    try:
        record(s, ev(digest="sha256:a"), [svc("web")])
        assert s.claim("w1", 30, T0) is not None
        record(s, ev(digest="sha256:b"), [svc("web")], now=T0 + 1)
        with psycopg.connect(postgres_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("UPDATE deploys SET status = 'running' WHERE status = 'queued'")
    finally:
        s.close()


def test_postgres_concurrent_replicas_never_run_a_target_twice(postgres_url):
    """Two stores (replicas) × 4 threads record and claim at once: no target ever has two
    running deploys, every target runs its deploys in id order, and nothing is lost."""
    from autodock.store.postgres import PostgresStore

    replicas = [PostgresStore(postgres_url, max_size=6) for _ in range(2)]
    targets = [f"t{i}" for i in range(8)]
    lock = threading.Lock()
    running: set[str] = set()
    ran: dict[str, list[int]] = {t: [] for t in targets}
    problems: list[str] = []
    recorded = threading.Event()

    def produce(n: int) -> None:
        for i in range(40):
            target = targets[(i * 3 + n) % len(targets)]
            replicas[i % 2].record_event(
                ev(f"org/{target}", digest=f"sha256:{n}-{i}"),
                [svc(target)],
                payload=None,
                now=T0,
                dedup_window=0,
            )

    def consume(n: int) -> None:
        s = replicas[n % 2]
        idle = 0
        while idle < 30:
            job = s.claim(f"w{n}", 30, T0)
            if job is None:
                idle = idle + 1 if recorded.is_set() else 0
                threading.Event().wait(0.01)
                continue
            idle = 0
            with lock:
                if job.target in running:
                    problems.append(f"{job.target} claimed twice")
                running.add(job.target)
                ran[job.target].append(job.id)
            threading.Event().wait(0.002)
            with lock:
                running.discard(job.target)
            s.finish(job.id, f"w{n}", DeployResult(DeployStatus.SUCCEEDED), T0)

    with ThreadPoolExecutor(8) as pool:
        consumers = [pool.submit(consume, n) for n in range(4)]
        producers = [pool.submit(produce, n) for n in range(4)]
        for f in producers:
            f.result()
        recorded.set()
        for f in consumers:
            f.result()
    try:
        assert problems == []
        for target, ids in ran.items():
            assert ids == sorted(ids), f"{target} ran out of order: {ids}"
        counts = replicas[0].counts()
        assert counts["events"] == 160
        assert counts.get("deploys_queued", 0) == counts.get("deploys_running", 0) == 0
        assert counts["deploys_succeeded"] + counts.get("deploys_superseded", 0) == 160
        assert counts["deploys_succeeded"] == sum(len(v) for v in ran.values())
        # the last push of every target ran
        for target in targets:
            (last,) = replicas[1].list_deploys(DeployFilter(target=target, limit=1))
            assert last.status is DeployStatus.SUCCEEDED
    finally:
        for s in replicas:
            s.close()


def test_postgres_concurrent_redeliveries_store_the_push_once(postgres_url):
    from autodock.store.postgres import PostgresStore

    replicas = [PostgresStore(postgres_url, max_size=4) for _ in range(2)]
    try:

        def deliver(i: int):
            return replicas[i % 2].record_event(
                ev(digest="sha256:same", delivery=f"d-{i % 3}"),
                [svc("web")],
                payload=None,
                now=T0,
                dedup_window=WINDOW,
            )

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(deliver, range(24)))
        accepted = [r for r in results if r.status == "accepted"]
        assert len(accepted) == 1
        assert {r.event_id for r in results} == {accepted[0].event_id}
        assert replicas[0].counts() == {"events": 1, "deploys_queued": 1}
    finally:
        for s in replicas:
            s.close()


def test_postgres_password_comes_from_a_secret_file(tmp_path, monkeypatch):
    from autodock.store.postgres import PASSWORD_FILE_ENV, _password_from_file

    secret = tmp_path / "db_password"
    secret.write_text("hunter2\n")
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(secret))
    assert _password_from_file("postgresql://autodock@db/autodock") == {"password": "hunter2"}
    assert _password_from_file("postgresql://autodock:inline@db/autodock") == {}
    monkeypatch.delenv(PASSWORD_FILE_ENV)
    assert _password_from_file("postgresql://autodock@db/autodock") == {}


# ------------------------------------------------------------------ holds: pause, freeze,
# approvals, deferral (both backends)


def approval(name: str) -> PlannedDeploy:
    p = svc(name)
    return PlannedDeploy(p.rule, p.kind, p.target, p.target_key, {**p.action, "approval": True})


def test_paused_target_and_freeze_hold_claims_but_not_repairs(store):
    first = record(store, ev(tag="a"), [svc("web")]).deploy_ids[0]
    store.pause("service:web", reason="testing", by="me", now=T0)
    assert store.claim("w", 30, T0 + 1) is None
    assert store.next_due() is None  # the idle loop does not spin on held work
    store.resume("service:web")
    store.pause("*", reason="freeze", by="me", now=T0)
    assert store.claim("w", 30, T0 + 1) is None
    repair = PlannedDeploy("group:rel", "service", "api", "service:api", {"service": "api"})
    rid = record(store, ev(tag="b"), [repair]).deploy_ids[0]
    assert store.claim("w", 30, T0 + 2).id == rid  # rollbacks are never held
    assert [p["key"] for p in store.list_pauses()] == ["*"]
    assert store.resume("*") and not store.resume("*")
    assert store.claim("w", 30, T0 + 3).id == first


def test_approval_waits_and_latest_push_wins(store):
    a = record(store, ev(tag="v1"), [approval("web")]).deploy_ids[0]
    assert status(store, a) is DeployStatus.AWAITING_APPROVAL
    assert store.claim("w", 30, T0 + 1) is None
    b = record(store, ev(tag="v2"), [approval("web")]).deploy_ids[0]
    assert status(store, a) is DeployStatus.SUPERSEDED  # an older approval is moot
    assert not store.decide(a, True, "ann", T0 + 2)
    assert store.decide(b, True, "ann", T0 + 2)
    assert not store.decide(b, True, "ann", T0 + 2)  # decided once
    job = store.claim("w", 30, T0 + 3)
    assert job.id == b and job.progress == "approved by ann"
    c = record(store, ev(tag="v3"), [approval("api")]).deploy_ids[0]
    assert store.decide(c, False, "bob", T0 + 4)
    rejected = store.get_deploy(c)
    assert rejected.status is DeployStatus.REJECTED and rejected.error == "rejected by bob"
    assert rejected.status.final


def test_defer_puts_work_back_without_counting_the_try(store):
    a = record(store, ev(), [svc("web")]).deploy_ids[0]
    job = store.claim("w", 30, T0 + 1)
    store.defer(a, "w", until=T0 + 100, reason="held: outside the deploy window")
    assert store.claim("w", 30, T0 + 50) is None
    assert store.next_due() == T0 + 100
    again = store.claim("w", 30, T0 + 100)
    assert again.id == a and again.attempts == job.attempts


def test_a_claimed_deploy_can_turn_to_awaiting_approval(store):
    a = record(store, ev(tag="v2.0.0"), [svc("web")]).deploy_ids[0]
    job = store.claim("w", 30, T0 + 1)
    store.await_approval(a, "w", "v2.0.0 is a major upgrade from v1.4.2 (policy allows minor)")
    held = store.get_deploy(a)
    assert held.status is DeployStatus.AWAITING_APPROVAL and "major upgrade" in held.error
    assert held.attempts == job.attempts - 1
    assert store.claim("w", 30, T0 + 2) is None
    assert store.decide(a, True, "ann", T0 + 3)
    again = store.claim("w", 30, T0 + 4)
    assert again.id == a and again.progress == "approved by ann"
