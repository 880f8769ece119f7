"""Pure pieces of the db package: FK closure planning, masking, cron, URL identity."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from autodock.cron import CronError
from autodock.db import CloneError
from autodock.db.closure import ForeignKey, plan_clone
from autodock.db.masking import (
    Masker,
    MaskRule,
    RowMasker,
    copy_escape,
    copy_unescape,
    parse_mask,
    parse_masks,
)
from autodock.db.schedule import Cron, load_jobs
from autodock.db.urls import ProductionGuard, identity, redact

TABLES = ["users", "orders", "items", "products", "audit", "a", "b"]
FKS = [
    ForeignKey("orders_user", "orders", ("user_id",), "users", ("id",)),
    ForeignKey("items_order", "items", ("order_id",), "orders", ("id",)),
    ForeignKey("items_product", "items", ("product_id",), "products", ("id",)),
    ForeignKey("users_ref", "users", ("referrer_id",), "users", ("id",)),
    ForeignKey("a_b", "a", ("b_id",), "b", ("id",)),
    ForeignKey("b_a", "b", ("a_id",), "a", ("id",)),
]


def plan(**kw):
    return plan_clone("public", TABLES, FKS, **kw)


def test_whole_clone_plans_every_table_parents_first():
    p = plan()
    assert {t.mode for t in p.tables} == {"all"}
    order = p.names
    assert order.index("users") < order.index("orders") < order.index("items")
    assert p.get("orders").query == 'SELECT * FROM "public"."orders"'


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (
            {"include": ["items"]},
            {
                "items": "all",
                "orders": "referenced",
                "products": "referenced",
                "users": "referenced",
            },
        ),
        ({"include": ["items"], "where": {"items": "qty > 1"}}, {"items": "filtered"}),
        ({"include": ["orders,audit"]}, {"orders": "all", "audit": "all", "users": "referenced"}),
        ({"exclude": ["items", "audit", "a", "b"]}, {"orders": "all", "users": "all"}),
        ({"include": ["users"], "where": {"users": "id < 3"}}, {"users": "filtered"}),
    ],
)
def test_closure_modes(kw, expected):
    modes = {t.name: t.mode for t in plan(**kw).tables}
    assert {k: modes.get(k) for k in expected} == expected
    if "include" in kw and "where" not in kw:
        assert set(modes) == set(expected)


def test_referenced_rows_follow_the_chain_and_self_references():
    p = plan(include=["items"], where={"items": "qty > 1"})
    users = p.get("users").query
    # users ← orders ← items: the users query selects through the filtered orders, and walks
    # the referral self-reference recursively over row ids.
    assert users.startswith('WITH RECURSIVE k0 AS (SELECT * FROM "public"."items" WHERE (qty > 1))')
    assert '("id") IN (SELECT "user_id" FROM k1)' in users
    assert 'JOIN k2_r r ON (t."id") = (r.c0)' in users
    assert users.endswith("SELECT * FROM k2")
    orders = p.get("orders").query
    assert '("id") IN (SELECT "order_id" FROM k0)' in orders
    # A table chosen whole never carries a filter.
    assert plan(include=["items"]).get("items").query == 'SELECT * FROM "public"."items"'


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"exclude": ["users"]}, "users cannot be excluded"),
        ({"include": ["nope"]}, "no such table"),
        ({"include": ["audit"], "where": {"users": "true"}}, "not cloned"),
        ({"include": ["a"], "where": {"a": "true", "b": "true"}}, "cycle"),
        ({"exclude": TABLES}, "nothing to clone"),
    ],
)
def test_closure_errors(kw, message):
    with pytest.raises(CloneError, match=message):
        plan(**kw)


def test_cycle_is_fine_when_one_side_is_whole():
    p = plan(include=["a", "b"], where={"a": "id < 5"})
    assert {t.name: t.mode for t in p.tables} == {"a": "filtered", "b": "all"}


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize(
    "value", ["plain", "tab\there", "new\nline", "back\\slash", "cr\rx", "ünïcødé", ""]
)
def test_copy_escape_roundtrip(value):
    assert copy_unescape(copy_escape(value)) == value
    assert b"\t" not in copy_escape(value) and b"\n" not in copy_escape(value)


def test_copy_null_and_octal():
    assert copy_unescape(b"\\N") is None and copy_escape(None) == b"\\N"
    assert copy_unescape(b"a\\101\\x42") == "aAB"


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("users.email=hash", MaskRule("users", "email", "hash")),
        ("users.phone=null", MaskRule("users", "phone", "null")),
        ("users.note=fixed:a=b:c", MaskRule("users", "note", "fixed", "a=b:c")),
        ("s.t.c=fake", MaskRule("s.t", "c", "fake")),
    ],
)
def test_parse_mask(spec, rule):
    assert parse_mask(spec) == rule


@pytest.mark.parametrize("spec", ["users.email", "email=hash", "users.email=rot13", "t.c=fixed"])
def test_parse_mask_errors(spec):
    with pytest.raises(CloneError):
        parse_mask(spec)


def test_parse_masks_from_mapping_and_duplicates():
    assert parse_masks({"u.e": "hash"}) == [MaskRule("u", "e", "hash")]
    with pytest.raises(CloneError, match="twice"):
        parse_masks(["u.e=hash", "u.e=null"])


@pytest.mark.parametrize(
    ("column", "type_name", "strategy", "check"),
    [
        ("email", "text", "fake", lambda v: v.startswith("user-") and v.endswith(".invalid")),
        ("email", "character varying(10)", "hash", lambda v: len(v) == 10),
        ("full_name", "text", "fake", lambda v: len(v.split()) == 3),
        ("phone", "text", "fake", lambda v: v.startswith("+1-555-")),
        ("id", "integer", "hash", lambda v: 0 < int(v) < 2**31),
        ("token", "uuid", "hash", lambda v: len(v) == 36),
        ("born", "date", "fake", lambda v: v[:2] in ("19", "20")),
    ],
)
def test_maskers(column, type_name, strategy, check):
    m = Masker(MaskRule("t", column, strategy), b"salt", type_name)
    out = m("secret value 42")
    assert out != "secret value 42" and check(out)
    assert m("secret value 42") == out  # deterministic within a run: joins still match
    assert Masker(MaskRule("t", column, strategy), b"other", type_name)("secret value 42") != out
    assert m(None) is None


def test_masker_type_checks():
    with pytest.raises(CloneError, match="NOT NULL"):
        Masker(MaskRule("t", "c", "null"), b"s", "text", notnull=True)
    with pytest.raises(CloneError, match="cannot hash a jsonb"):
        Masker(MaskRule("t", "c", "hash"), b"s", "jsonb")
    assert Masker(MaskRule("t", "c", "fixed", "{}"), b"s", "jsonb")('{"a": 1}') == "{}"


def test_row_masker_handles_rows_split_across_chunks():
    rm = RowMasker({1: Masker(MaskRule("t", "email", "fixed", "x\ty"), b"s", "text")})
    data = b"1\ta@b.c\tkeep\n2\t\\N\tkeep\\tme\n3\tz@q\tlast\n"
    out = b"".join(rm.feed(data[i : i + 5]) for i in range(0, len(data), 5)) + rm.finish()
    assert out == b"1\tx\\ty\tkeep\n2\tx\\ty\tkeep\\tme\n3\tx\\ty\tlast\n"
    rm.feed(b"4\tpartial")
    with pytest.raises(CloneError, match="middle of a row"):
        rm.finish()


# ---------------------------------------------------------------- cron


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "when", "match"),
    [
        ("* * * * *", at(2025, 3, 1, 12, 34), True),
        ("15 3 * * *", at(2025, 3, 1, 3, 15), True),
        ("15 3 * * *", at(2025, 3, 1, 3, 16), False),
        ("*/15 * * * *", at(2025, 3, 1, 7, 45), True),
        ("*/15 * * * *", at(2025, 3, 1, 7, 46), False),
        ("0 9-17/4 * * *", at(2025, 3, 1, 13, 0), True),
        ("0 9-17/4 * * *", at(2025, 3, 1, 15, 0), False),
        ("0 0 * * mon-fri", at(2025, 3, 3, 0, 0), True),  # a Monday
        ("0 0 * * MON-FRI", at(2025, 3, 2, 0, 0), False),  # a Sunday
        ("0 0 * * 7", at(2025, 3, 2, 0, 0), True),  # 7 is Sunday too
        ("0 0 1 jan,jul *", at(2025, 7, 1, 0, 0), True),
        ("0 0 13 * fri", at(2025, 3, 14, 0, 0), True),  # either day field (Vixie cron)
        ("0 0 13 * fri", at(2025, 3, 13, 0, 0), True),
        ("0 0 13 * fri", at(2025, 3, 12, 0, 0), False),
        ("@daily", at(2025, 3, 12, 0, 0), True),
        ("@hourly", at(2025, 3, 12, 5, 1), False),
    ],
)
def test_cron_matches(expr, when, match):
    assert Cron.parse(expr).matches(when) is match


@pytest.mark.parametrize(
    "expr", ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "x * * * *", "5-2 * * * *"]
)
def test_cron_rejects(expr):
    with pytest.raises(CronError):
        Cron.parse(expr)


def test_cron_next_after():
    assert Cron.parse("15 3 * * mon-fri").next_after(at(2025, 1, 4, 12, 0)) == at(2025, 1, 6, 3, 15)
    assert Cron.parse("0 0 29 2 *").next_after(at(2025, 1, 1, 0, 0)) == at(2028, 2, 29, 0, 0)
    assert Cron.parse("*/5 * * * *").next_after(at(2025, 1, 1, 0, 5)) == at(2025, 1, 1, 0, 10)


def test_load_jobs_validates():
    base = {"name": "j", "schedule": "@daily", "from": "postgresql://a/x", "to": "postgresql://b/x"}
    (job,) = load_jobs(
        {"db_clone": {"jobs": [{**base, "mask": {"u.e": "hash"}, "tables": "orders"}]}}
    )
    assert job.options.tables == ["orders"] and job.options.masks[0].strategy == "hash"
    for bad, message in [
        ({**base, "colour": 1}, "unknown key"),
        ({**base, "schedule": None}, "schedule is required"),
        ({k: v for k, v in base.items() if k != "to"}, "give to or to_env"),
        ({**base, "to": None, "to_env": "AUTODOCK_SURELY_UNSET"}, "not set"),
    ]:
        with pytest.raises(CloneError, match=message):
            load_jobs({"db_clone": {"jobs": [bad]}})
    with pytest.raises(CloneError, match="duplicate"):
        load_jobs({"db_clone": {"jobs": [base, base]}})


# ---------------------------------------------------------------- URLs


def test_identity_and_redaction():
    a = identity("postgresql://u:pw@localhost/app")
    assert a == identity("postgresql://other@127.0.0.1:5432/app")
    assert a == identity("host=/var/run/postgresql dbname=app")
    assert a != identity("postgresql://u@localhost/app2")
    assert "pw" not in redact("postgresql://u:pw@db/app") and "***" in redact(
        "postgresql://u:pw@db/app"
    )


@pytest.mark.parametrize(
    ("entry", "target", "hit"),
    [
        ("postgresql://db.prod/app", "postgresql://x:y@DB.PROD:5432/app", True),
        ("postgresql://db.prod/app", "postgresql://db.prod/other", False),
        ("postgresql://db.prod", "postgresql://db.prod/other", True),  # whole server
        ("*.prod.internal", "postgresql://pg1.prod.internal/app", True),
        ("*.prod.internal", "postgresql://pg1.stage.internal/app", False),
        ("db.prod:6432", "postgresql://db.prod:6432/app", True),
        ("db.prod:6432", "postgresql://db.prod:5432/app", False),
    ],
)
def test_production_guard(entry, target, hit):
    assert (ProductionGuard((entry,)).matches(target) is not None) is hit


# ---------------------------------------------------------------- progress and CLI


def test_progress_tty_redraws_and_logs_print_lines():
    import io

    from autodock.db.progress import Progress

    t = [0.0]
    tty = io.StringIO()
    p = Progress(tty, tty=True, clock=lambda: t[0])
    p.start_table("orders", expected_rows=200)
    t[0] = 1.0
    p.advance(100, 2048)
    p.finish_table()
    assert tty.getvalue().startswith("\r\x1b[2Korders: 100 rows (50%), 2.0 KiB, 100 rows/s")
    assert tty.getvalue().endswith("\n")
    lines: list[str] = []
    p = Progress(io.StringIO(), tty=False, emit=lines.append, clock=lambda: t[0])
    p.start_table("users")
    p.advance(10, 10)  # within the interval: silent
    t[0] += 6
    p.advance(10, 10)
    p.finish_table()
    assert [line.split(":")[0] for line in lines] == ["copying users", "copied users"]


def test_db_jobs_cli_lists_next_runs(tmp_path):
    import yaml
    from click.testing import CliRunner

    from autodock.config import load_config
    from autodock.db.cli import db

    cfg = tmp_path / "autodock.yml"
    job = {
        "name": "nightly",
        "schedule": "15 3 * * *",
        "from_env": "PROD_URL",
        "to": "postgresql://u:pw@stage/app",
    }
    cfg.write_text(yaml.safe_dump({"db_clone": {"jobs": [job]}}))
    assert load_config(cfg).db_clone is not None  # the main config accepts the section
    res = CliRunner().invoke(db, ["jobs", "-c", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "nightly: '15 3 * * *' next" in res.output and "03:15" in res.output
    assert "PROD_URL" in res.output and "pw" not in res.output
