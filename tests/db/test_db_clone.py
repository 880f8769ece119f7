"""Cloning against a real PostgreSQL 15 server (see conftest: a throwaway cluster)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest
import yaml
from click.testing import CliRunner

from autodock.cli import AutodockGroup
from autodock.config import parse_config_text
from autodock.db import CloneError, ProductionTargetError
from autodock.db.cli import db
from autodock.db.copy import CloneOptions, clone
from autodock.db.progress import Progress
from autodock.db.schedule import CloneScheduler, run_scheduler
from autodock.db.urls import ProductionGuard
from tests.support.postgres import seed_shop

# The main CLI's group with only `db` registered: the same error → exit code mapping, without
# depending on the other lazily loaded tool groups being present in this checkout.
main = AutodockGroup(commands={"db": db})

COUNTS = "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders), " \
    "(SELECT count(*) FROM order_items)"  # fmt: skip


def fk_violations(dbs, url: str) -> int:
    """Rows whose foreign keys point nowhere (the constraints exist too; this double-checks)."""
    checks = {
        "orders": "SELECT count(*) FROM orders o WHERE NOT EXISTS "
        "(SELECT 1 FROM users u WHERE u.id = o.user_id)",
        "order_items": "SELECT count(*) FROM order_items i WHERE NOT EXISTS "
        "(SELECT 1 FROM orders o WHERE o.id = i.order_id) OR NOT EXISTS "
        "(SELECT 1 FROM products p WHERE p.id = i.product_id)",
        "users": "SELECT count(*) FROM users u WHERE u.referrer_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM users r WHERE r.id = u.referrer_id)",
    }
    total = 0
    for table, query in checks.items():
        if dbs.sql(url, "SELECT to_regclass(%s)", [f"public.{table}"])[0][0] is not None:
            total += dbs.sql(url, query)[0][0]
    return total


def test_whole_clone_copies_rows_schema_and_sequences(dbs):
    seed_shop(dbs.prod)
    dbs.sql(dbs.stage, "CREATE TABLE stale (x int); INSERT INTO stale VALUES (1)")
    lines: list[str] = []
    result = clone(
        CloneOptions.build(dbs.prod, dbs.stage), progress=Progress(tty=False, emit=lines.append)
    )
    assert result.status == "succeeded" and result.swapped and result.dropped_old
    assert dbs.sql(dbs.stage, COUNTS) == dbs.sql(dbs.prod, COUNTS) == [(50, 200, 200)]
    assert result.rows == 50 + 200 + 200 + 20 + 30
    # Same data, including json with escapes, enums, generated and identity columns.
    q = "SELECT id, user_id, status, total, total_cents, note::text FROM orders ORDER BY id"
    assert dbs.sql(dbs.stage, q) == dbs.sql(dbs.prod, q)
    q = "SELECT id, email, tier::text, referrer_id, profile FROM users ORDER BY id"
    assert dbs.sql(dbs.stage, q) == dbs.sql(dbs.prod, q)
    # The whole schema is replaced: a table only stage had is gone, no load schema remains.
    schemas = {r[0] for r in dbs.sql(dbs.stage, "SELECT nspname FROM pg_namespace")}
    assert not any("autodock" in s for s in schemas)
    assert dbs.sql(dbs.stage, "SELECT to_regclass('public.stale')") == [(None,)]
    # Constraints and indexes came along and are enforced.
    cons = "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
    cons += "WHERE connamespace = 'public'::regnamespace ORDER BY 1"
    assert dbs.sql(dbs.stage, cons) == dbs.sql(dbs.prod, cons)
    idx = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
    assert dbs.sql(dbs.stage, idx) == dbs.sql(dbs.prod, idx)
    # Sequences continue after production's values instead of colliding.
    assert dbs.sql(dbs.stage, "INSERT INTO users (email) VALUES ('n@x') RETURNING id") == [(51,)]
    new_order = "INSERT INTO orders (user_id, status, total) VALUES (1, 'x', 1) RETURNING id"
    assert dbs.sql(dbs.stage, new_order) == [(201,)]
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        dbs.sql(dbs.stage, "INSERT INTO orders (user_id, status, total) VALUES (999, 'x', 1)")
    assert any(line.startswith("copied orders: 200 rows") for line in lines)


def test_subset_pulls_referenced_rows_fk_closure(dbs):
    seed_shop(dbs.prod)
    options = CloneOptions.build(
        dbs.prod, dbs.stage, tables=["order_items"], where=["order_items: order_id <= 3"]
    )
    result = clone(options)
    modes = {t["table"]: (t["mode"], t["rows"]) for t in result.tables}
    # order 1..3 belong to users 2..4; their referral chain reaches user 1.
    assert modes == {
        "order_items": ("filtered", 3),
        "orders": ("referenced", 3),
        "products": ("referenced", 3),
        "users": ("referenced", 4),
    }
    assert dbs.sql(dbs.stage, "SELECT id FROM users ORDER BY id") == [(1,), (2,), (3,), (4,)]
    assert dbs.sql(dbs.stage, "SELECT to_regclass('public.audit_log')") == [(None,)]
    assert fk_violations(dbs, dbs.stage) == 0


def test_where_filter_on_chosen_tables(dbs):
    seed_shop(dbs.prod)
    result = clone(
        CloneOptions.build(
            dbs.prod,
            dbs.stage,
            tables=["orders", "users", "audit_log"],
            exclude=["audit_log"],
            where=["orders: status = 'open'", "users: tier = 'pro'"],
        )
    )
    open_orders = dbs.sql(dbs.prod, "SELECT count(*) FROM orders WHERE status = 'open'")[0][0]
    assert dbs.sql(dbs.stage, "SELECT count(*), min(status), max(status) FROM orders") == [
        (open_orders, "open", "open")
    ]
    # Users: the pro ones, plus every user an open order or a kept user's referral points at.
    expected = dbs.sql(
        dbs.prod,
        "SELECT count(*) FROM users WHERE tier = 'pro' OR id <= "
        "(SELECT max(id) FROM users WHERE tier = 'pro' OR id IN "
        "(SELECT user_id FROM orders WHERE status = 'open'))",
    )[0][0]
    assert dbs.sql(dbs.stage, "SELECT count(*) FROM users")[0][0] == expected
    assert fk_violations(dbs, dbs.stage) == 0
    assert {t["table"] for t in result.tables} == {"orders", "users"}


def test_plan_errors_are_clear(dbs):
    seed_shop(dbs.prod)
    with pytest.raises(CloneError, match="users cannot be excluded"):
        clone(CloneOptions.build(dbs.prod, dbs.stage, exclude=["users"]))
    with pytest.raises(CloneError, match="no such table"):
        clone(CloneOptions.build(dbs.prod, dbs.stage, tables=["nope"]))
    with pytest.raises(CloneError, match="NOT NULL"):
        clone(CloneOptions.build(dbs.prod, dbs.stage, mask=["users.email=null"]))
    with pytest.raises(CloneError, match="operator does not exist"):
        clone(CloneOptions.build(dbs.prod, dbs.stage, where=["users: id <<>> 1"]))
    # The source is read in a read-only transaction: a filter cannot change production.
    for evil in (
        "users: true)) AS x) TO STDOUT; DROP TABLE audit_log; --",
        "users: pg_sleep(0) "
        "IS NULL OR EXISTS (SELECT 1 FROM (DELETE FROM audit_log RETURNING 1) d)",
    ):
        with pytest.raises(CloneError):
            clone(CloneOptions.build(dbs.prod, dbs.stage, where=[evil]))
    assert dbs.sql(dbs.prod, "SELECT count(*) FROM audit_log") == [(30,)]
    # A failed clone leaves stage as it was: no load schema, nothing half-made.
    assert dbs.sql(
        dbs.stage, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '%autodock%'"
    ) == [(0,)]


def test_masking_leaves_no_raw_value_on_stage(dbs, pg_cluster):
    seed_shop(dbs.prod)
    raw = dbs.sql(dbs.prod, "SELECT email, full_name, phone FROM users")
    raw_values = {v for row in raw for v in row if v}
    result = clone(
        CloneOptions.build(
            dbs.prod,
            dbs.stage,
            mask=[
                "users.email=fake",
                "users.full_name=hash",
                "users.phone=null",
                "users.profile=fixed:{}",
            ],
        )
    )
    assert result.status == "succeeded"
    # Scan all of stage as text: every table, every column, the catalog-visible data.
    dump = subprocess.run(
        [str(pg_cluster.bindir / "pg_dump"), "--dbname", dbs.stage],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "user-" in dump and "@example.invalid" in dump
    leaked = [v for v in raw_values if v in dump]
    assert leaked == []
    assert "real-mail" not in dump and "Real Person" not in dump and "+49 170" not in dump
    # Still usable: unique emails stayed unique, varchar(60) limit respected, FKs intact.
    assert dbs.sql(
        dbs.stage, "SELECT count(DISTINCT email), max(length(full_name)) FROM users"
    ) == [(50, 60)]
    assert dbs.sql(
        dbs.stage, "SELECT count(*) FROM users WHERE phone IS NOT NULL OR profile <> '{}'"
    ) == [(0,)]
    assert fk_violations(dbs, dbs.stage) == 0


def test_swap_is_atomic_for_a_reader(dbs):
    seed_shop(dbs.prod, users=2000, orders=20000)
    seed_shop(dbs.stage, users=100, orders=300)
    old = dbs.sql(dbs.stage, COUNTS)[0]
    new = dbs.sql(dbs.prod, COUNTS)[0]
    seen: list[tuple] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(dbs.stage, autocommit=True, prepare_threshold=None) as conn:
            while not stop.is_set():
                try:
                    seen.append(tuple(conn.execute(COUNTS).fetchone()))
                except psycopg.Error as exc:
                    errors.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(0.2)
        for _ in range(2):  # twice: the second also replaces a schema made by a clone
            clone(CloneOptions.build(dbs.prod, dbs.stage))
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(10)
    assert errors == []
    assert set(seen) <= {old, new}, set(seen) - {old, new}
    assert seen[0] == old and seen[-1] == new
    assert len(seen) > 20


def test_scheduled_run_with_injected_clock(dbs):
    seed_shop(dbs.prod)
    config = parse_config_text(
        yaml.safe_dump(
            {
                "db_clone": {
                    "jobs": [
                        {
                            "name": "nightly",
                            "schedule": "30 4 * * *",
                            "from": dbs.prod,
                            "to_env": "AUTODOCK_TEST_STAGE_URL",
                            "tables": ["orders"],
                            "where": {"orders": "id <= 10"},
                            "mask": {"users.email": "hash"},
                        }
                    ]
                }
            }
        )
    )
    now = [datetime(2025, 1, 1, 4, 29, 50, tzinfo=UTC).timestamp()]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    os.environ["AUTODOCK_TEST_STAGE_URL"] = dbs.stage
    try:
        scheduler = CloneScheduler.from_config(config, clock=lambda: now[0], sleep=fake_sleep)
    finally:
        del os.environ["AUTODOCK_TEST_STAGE_URL"]
    assert scheduler.due(now[0]) == []
    assert [j.name for j in scheduler.due(now[0] + 15)] == ["nightly"]
    asyncio.run(scheduler.run(iterations=3))  # 04:29:50, 04:30:00.05, 04:31:00.05
    assert len(scheduler.results) == 1
    record = scheduler.results[0]
    assert record["job"] == "nightly" and record["status"] == "succeeded"
    assert record["rows"] > 10 and record["duration_s"] >= 0
    assert record["scheduled_for"] == "2025-01-01T04:30:00+00:00"
    assert record["finished_at"] >= record["started_at"]
    assert "password" not in record["target"]
    assert dbs.sql(dbs.stage, "SELECT count(*) FROM orders") == [(10,)]
    assert fk_violations(dbs, dbs.stage) == 0


def test_run_scheduler_reports_failures_as_records(dbs):
    config = {"db_clone": {"jobs": [{"name": "broken", "schedule": "* * * * *", "from": dbs.prod,
                                     "to": dbs.prod}]}}  # fmt: skip
    records: list[dict] = []

    async def stop_after_first(seconds: float) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(
            run_scheduler(config, clock=time.time, sleep=stop_after_first, on_result=records.append)
        )
    assert [(r["job"], r["status"]) for r in records] == [("broken", "failed")]
    assert "same database" in records[0]["error"]


def test_refuses_to_clone_into_production(dbs, tmp_path):
    seed_shop(dbs.prod)
    seed_shop(dbs.stage, users=5, orders=5)
    before = dbs.sql(dbs.stage, COUNTS)
    local_alias = dbs.prod.replace("127.0.0.1", "localhost")
    for target in (dbs.prod, local_alias):
        with pytest.raises(ProductionTargetError, match="same database"):
            clone(CloneOptions.build(dbs.prod, target))
    port = dbs.cluster.port
    for entry in (
        f"postgresql://127.0.0.1:{port}/{dbs.stage_name}",
        "127.0.0.*",
        f"localhost:{port}",
    ):
        with pytest.raises(ProductionTargetError, match="matches production"):
            clone(CloneOptions.build(dbs.prod, dbs.stage), guard=ProductionGuard((entry,)))
    # A production entry for another database on the same server does not block stage.
    other = ProductionGuard((f"postgresql://127.0.0.1:{port}/{dbs.prod_name}",))
    assert other.matches(dbs.stage) is None and other.matches(dbs.prod)

    # Through the CLI, with the production list in autodock.yml: refused, exit code 1.
    cfg = tmp_path / "autodock.yml"
    cfg.write_text(
        yaml.safe_dump(
            {"db_clone": {"production": [f"postgresql://localhost:{port}/{dbs.stage_name}"]}}
        )
    )
    res = CliRunner().invoke(
        main, ["db", "clone", "--from", dbs.prod, "--to", dbs.stage, "-c", str(cfg)]
    )
    assert res.exit_code == 1, res.output
    assert "refusing" in res.output

    # A database marked as production refuses whatever the URL says.
    dbs.sql(dbs.stage, f"ALTER DATABASE \"{dbs.stage_name}\" SET autodock.role = 'production'")
    with pytest.raises(ProductionTargetError, match="autodock.role"):
        clone(CloneOptions.build(dbs.prod, dbs.stage))
    assert dbs.sql(dbs.stage, COUNTS) == before


def test_cli_clone_json_and_dry_run(dbs, tmp_path):
    seed_shop(dbs.prod)
    runner = CliRunner()
    args = ["db", "clone", "--from", dbs.prod, "--to", dbs.stage, "-c", str(tmp_path / "none.yml")]
    (tmp_path / "none.yml").write_text("db_clone: {}\n")
    res = runner.invoke(
        main, [*args, "--tables", "orders", "--where", "orders: id < 5", "--dry-run"]
    )
    assert res.exit_code == 0, res.output
    assert "orders: filtered" in res.output and "users: referenced" in res.output
    assert dbs.sql(dbs.stage, "SELECT to_regclass('public.orders')") == [(None,)]
    res = runner.invoke(main, [*args, "--json", "--mask", "users.email=hash", "--schema-only"])
    assert res.exit_code == 0, res.output
    assert '"status": "succeeded"' in res.output
    assert dbs.sql(dbs.stage, "SELECT count(*) FROM users") == [(0,)]
    res = runner.invoke(main, [*args, "--mask", "users.nope=hash"])
    assert res.exit_code == 1 and "no column nope" in res.output


def test_parity_schema_diff_on_real_databases(dbs):
    from autodock.db.parity import diff_schemas, read_schema

    seed_shop(dbs.prod)
    clone(CloneOptions.build(dbs.prod, dbs.stage, schema_only=True))
    assert diff_schemas(read_schema(dbs.stage), read_schema(dbs.prod)) == []
    dbs.sql(dbs.stage, "ALTER TABLE users ADD COLUMN debug text; DROP INDEX orders_status_idx")
    keys = [d.key for d in diff_schemas(read_schema(dbs.stage), read_schema(dbs.prod))]
    assert keys == ["db.orders.index.orders_status_idx", "db.users.debug"]
