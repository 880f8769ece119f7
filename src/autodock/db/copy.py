"""The clone itself: plan on the source, stream with COPY into a load schema, swap.

Every source query runs in one ``REPEATABLE READ READ ONLY`` transaction, so all
tables (and the FK closure computed across them) come from one snapshot and nothing can
be written on the source. Data flows ``COPY ... TO STDOUT`` → (masking) →
``COPY ... FROM STDIN`` in memory-sized chunks; nothing is spooled to disk.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from . import CloneError, ProductionTargetError
from .closure import ClonePlan, plan_clone, qi, qualified
from .masking import Masker, MaskRule, RowMasker, parse_masks
from .progress import Progress
from .schema import SchemaInfo, introspect
from .swap import cleanup_stale, drop_schema, load_schema_names, lock_target, swap_schemas
from .urls import ProductionGuard, redact

__all__ = ["CloneOptions", "CloneResult", "clone", "parse_where"]

WRITE_CHUNK = 256 * 1024


def parse_where(specs: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """``table: SQL condition`` items (or a mapping) → {table: condition}."""
    if isinstance(specs, Mapping):
        return {str(k): str(v) for k, v in specs.items()}
    out: dict[str, str] = {}
    for spec in specs:
        table, sep, cond = spec.partition(":")
        if not sep or not table.strip() or not cond.strip():
            raise CloneError(f"--where {spec!r}: expected 'table: SQL condition'")
        if table.strip() in out:
            raise CloneError(f"--where given twice for {table.strip()}")
        out[table.strip()] = cond.strip()
    return out


@dataclass
class CloneOptions:
    source: str
    target: str
    schema: str = "public"
    tables: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    where: dict[str, str] = field(default_factory=dict)
    masks: list[MaskRule] = field(default_factory=list)
    schema_only: bool = False
    mask_salt: str | None = None
    keep_old: bool = False
    dry_run: bool = False
    lock_timeout: str = "10s"

    @classmethod
    def build(
        cls,
        source: str,
        target: str,
        *,
        tables: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        where: Sequence[str] | Mapping[str, str] = (),
        mask: Sequence[str] | Mapping[str, str] = (),
        **kw: Any,
    ) -> CloneOptions:
        return cls(
            source,
            target,
            tables=list(tables) if tables else None,
            exclude=list(exclude),
            where=parse_where(where),
            masks=parse_masks(mask),
            **kw,
        )


@dataclass
class CloneResult:
    status: str = "running"
    source: str = ""
    target: str = ""
    schema: str = ""
    started_at: float = 0.0
    finished_at: float | None = None
    duration_s: float | None = None
    rows: int = 0
    bytes: int = 0
    tables: list[dict[str, Any]] = field(default_factory=list)
    swapped: bool = False
    replaced: bool = False
    dropped_old: bool | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _connect(url: str, **kw: Any) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(url, application_name="autodock db clone", **kw)
    except psycopg.OperationalError as exc:
        raise CloneError(f"cannot connect to {redact(url)}: {str(exc).strip()}") from None
    conn.execute("SET client_encoding = 'UTF8'")
    conn.commit()
    return conn


def _server_identity(conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT (SELECT system_identifier FROM pg_control_system()), current_database()"
            ).fetchone()
    except psycopg.Error:
        return None  # not allowed to read pg_control_system(): the URL checks must do
    return tuple(row) if row else None


def _check_target(src: psycopg.Connection[Any], tgt: psycopg.Connection[Any]) -> None:
    same = _server_identity(src)
    if same is not None and same == _server_identity(tgt):
        raise ProductionTargetError(
            "--from and --to reach the same database (same server and name); refusing"
        )
    role = tgt.execute("SELECT current_setting('autodock.role', true)").fetchone()
    tgt.commit()
    if role and (role[0] or "").strip().lower() in ("production", "prod"):
        raise ProductionTargetError(
            "the target database is marked autodock.role = production; refusing"
        )


def _maskers(info: SchemaInfo, plan: ClonePlan, rules: list[MaskRule], salt: bytes) -> dict:
    out: dict[str, dict[int, Masker]] = {}
    for rule in rules:
        if rule.table not in info.tables:
            raise CloneError(f"--mask {rule}: no table {rule.table}")
        table = info.tables[rule.table]
        col = table.column(rule.column)
        if col is None:
            raise CloneError(f"--mask {rule}: {rule.table} has no column {rule.column}")
        if not col.copied:
            raise CloneError(f"--mask {rule}: generated columns are computed, not copied")
        if rule.table not in plan.names:
            continue
        idx = table.copy_columns.index(rule.column)
        out.setdefault(rule.table, {})[idx] = Masker(rule, salt, col.type, col.notnull)
    return out


def clone(
    options: CloneOptions,
    guard: ProductionGuard | None = None,
    progress: Progress | None = None,
) -> CloneResult:
    """Run one clone; raises CloneError (or its ProductionTargetError) on refusal or failure."""
    guard = guard or ProductionGuard()
    progress = progress or Progress(enabled=False)
    guard.check(options.source, options.target)
    result = CloneResult(
        source=redact(options.source),
        target=redact(options.target),
        schema=options.schema,
        started_at=time.time(),
    )
    t0 = time.monotonic()
    src = _connect(options.source)
    try:
        tgt = _connect(options.target)
    except BaseException:
        src.close()
        raise
    try:
        _check_target(src, tgt)
        src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        src.read_only = True
        info = introspect(src, options.schema)
        if not info.tables:
            raise CloneError(f"schema {options.schema} has no tables on the source")
        plan = plan_clone(
            options.schema,
            info.tables,
            info.foreign_keys,
            include=options.tables,
            exclude=options.exclude,
            where=options.where,
        )
        salt = (options.mask_salt or secrets.token_hex(16)).encode()
        maskers = _maskers(info, plan, options.masks, salt)
        if options.dry_run:
            result.status = "planned"
            result.tables = [
                {"table": t.name, "mode": t.mode, "reason": t.reason, "query": t.query}
                for t in plan.tables
            ]
            return result
        if not lock_target(tgt, options.schema):
            raise CloneError(f"another clone into {options.schema} is running on the target")
        for stale in cleanup_stale(tgt, options.schema):
            progress.message(f"dropped leftover schema {stale}")
        new, old = load_schema_names(options.schema, uuid.uuid4().hex)
        _load(src, tgt, info, plan, new, maskers, options, progress, result)
        src.rollback()
        result.replaced = swap_schemas(tgt, options.schema, new, old, options.lock_timeout)
        result.swapped = True
        progress.message(f"swapped {new} in as {options.schema}")
        if not options.keep_old:
            result.dropped_old = drop_schema(tgt, old)
        result.status = "succeeded"
        progress.message(f"clone done: {progress.summary()}")
        return result
    except psycopg.Error as exc:
        raise CloneError(f"clone failed: {str(exc).strip()}") from exc
    finally:
        result.finished_at = time.time()
        result.duration_s = round(time.monotonic() - t0, 3)
        src.close()
        tgt.close()


def _load(
    src: psycopg.Connection[Any],
    tgt: psycopg.Connection[Any],
    info: SchemaInfo,
    plan: ClonePlan,
    new: str,
    maskers: dict[str, dict[int, Masker]],
    options: CloneOptions,
    progress: Progress,
    result: CloneResult,
) -> None:
    names = plan.names
    with tgt.transaction():
        tgt.execute(f"CREATE SCHEMA {qi(new)}")
        tgt.execute("SELECT set_config('search_path', %s, true)", [qi(new)])
        for statement in info.create_statements(names):
            tgt.execute(statement)
        for table in plan.tables:
            cols = info.tables[table.name].copy_columns
            entry: dict[str, Any] = {
                "table": table.name,
                "mode": table.mode,
                "reason": table.reason,
            }
            if not options.schema_only:
                progress.start_table(table.name, info.tables[table.name].est_rows)
                rows, nbytes = _copy_table(
                    src, tgt, table.query, qualified(new, table.name), cols,
                    maskers.get(table.name), progress,
                )  # fmt: skip
                entry.update(rows=rows, bytes=nbytes, seconds=round(progress.finish_table(), 3))
                result.rows += rows
                result.bytes += nbytes
            result.tables.append(entry)
        for statement in info.finish_statements(names):
            tgt.execute(statement)
        tgt.execute(f"ANALYZE {', '.join(qualified(new, n) for n in names)}")


def _copy_table(
    src: psycopg.Connection[Any],
    tgt: psycopg.Connection[Any],
    query: str,
    target: str,
    columns: list[str],
    maskers: dict[int, Masker] | None,
    progress: Progress,
) -> tuple[int, int]:
    col_list = ", ".join(qi(c) for c in columns)
    copy_out = f"COPY (SELECT {col_list} FROM ({query}) AS _rows) TO STDOUT"
    copy_in = f"COPY {target} ({col_list}) FROM STDIN"
    masker = RowMasker(maskers) if maskers else None
    rows = nbytes = 0
    buf = bytearray()
    with (
        src.cursor() as rcur,
        tgt.cursor() as wcur,
        rcur.copy(copy_out) as reader,
        wcur.copy(copy_in) as writer,
    ):
        for chunk in reader:
            data = bytes(chunk)
            if masker is not None:
                data = masker.feed(data)
            buf += data
            if len(buf) >= WRITE_CHUNK:
                n = buf.count(b"\n")
                writer.write(bytes(buf))
                rows += n
                nbytes += len(buf)
                progress.advance(n, len(buf))
                buf.clear()
        if masker is not None:
            buf += masker.finish()
        if buf:
            n = buf.count(b"\n")
            writer.write(bytes(buf))
            rows += n
            nbytes += len(buf)
            progress.advance(n, len(buf))
    return rows, nbytes
