"""Catalog introspection and DDL for one schema's tables.

DDL is built from the catalogs rather than from ``pg_dump`` output: the catalogs'
deparsers (``format_type``, ``pg_get_expr``, ``pg_get_constraintdef``,
``pg_get_indexdef``) print names of the introspected schema unqualified when it is the
``search_path``, so the same statements create the tables inside a fresh, differently
named load schema without rewriting SQL text. Covered: columns (types, collations,
defaults, identity, stored generated columns), enum types, sequences (owned and free,
with their current values), primary/unique/check/exclusion/foreign keys, and indexes.
Not covered: views, functions, triggers, policies, comments, partitioned tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from .closure import ForeignKey, qi

__all__ = [
    "Column",
    "Constraint",
    "SchemaInfo",
    "SequenceInfo",
    "TableInfo",
    "introspect",
    "ql",
]


def ql(value: str) -> str:
    """Quote an SQL string literal (standard_conforming_strings is on since 9.1)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    notnull: bool
    default: str | None
    identity: str  # '' | 'a' (always) | 'd' (by default)
    generated: str | None  # expression of a stored generated column
    collation: str | None
    identity_options: str = ""

    @property
    def copied(self) -> bool:
        # Generated columns are recomputed by the target; COPY must leave them out.
        return self.generated is None

    def ddl(self) -> str:
        parts = [qi(self.name), self.type]
        if self.collation:
            parts.append(f"COLLATE {self.collation}")
        if self.generated is not None:
            parts.append(f"GENERATED ALWAYS AS ({self.generated}) STORED")
        elif self.identity:
            kind = "ALWAYS" if self.identity == "a" else "BY DEFAULT"
            parts.append(f"GENERATED {kind} AS IDENTITY {self.identity_options}".rstrip())
        elif self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.notnull:
            parts.append("NOT NULL")
        return " ".join(parts)


@dataclass(frozen=True)
class Constraint:
    name: str
    kind: str  # p u c f x
    definition: str


@dataclass
class TableInfo:
    name: str
    columns: list[Column]
    constraints: list[Constraint]
    indexes: list[tuple[str, str]]  # (name, definition)
    est_rows: int = 0

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def copy_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.copied]


@dataclass(frozen=True)
class SequenceInfo:
    name: str
    ddl_options: str
    last_value: int
    is_called: bool
    owner: tuple[str, str] | None  # (table, column) for serial columns
    identity: bool


@dataclass
class SchemaInfo:
    schema: str
    tables: dict[str, TableInfo] = field(default_factory=dict)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    sequences: dict[str, SequenceInfo] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)

    def create_statements(self, tables: list[str]) -> list[str]:
        """Types, sequences and bare tables (constraints come after the data)."""
        out = [
            f"CREATE TYPE {qi(name)} AS ENUM ({', '.join(ql(lbl) for lbl in labels)})"
            for name, labels in sorted(self.enums.items())
        ]
        for seq in self._sequences(tables):
            if not seq.identity:
                out.append(f"CREATE SEQUENCE {qi(seq.name)} {seq.ddl_options}")
        for name in tables:
            cols = ",\n  ".join(c.ddl() for c in self.tables[name].columns)
            out.append(f"CREATE TABLE {qi(name)} (\n  {cols}\n)")
        for seq in self._sequences(tables):
            if seq.owner and not seq.identity:
                out.append(
                    f"ALTER SEQUENCE {qi(seq.name)} OWNED BY {qi(seq.owner[0])}.{qi(seq.owner[1])}"
                )
        return out

    def finish_statements(self, tables: list[str]) -> list[str]:
        """Sequence values, keys, checks, indexes, then foreign keys (they need the keys)."""
        out: list[str] = []
        for seq in self._sequences(tables):
            name = seq.name
            if seq.identity and seq.owner:
                name = f"pg_get_serial_sequence({ql(qi(seq.owner[0]))}, {ql(seq.owner[1])})"
                out.append(f"SELECT setval({name}, {seq.last_value}, {seq.is_called})")
            else:
                out.append(f"SELECT setval({ql(qi(name))}, {seq.last_value}, {seq.is_called})")
        order = {"p": 0, "u": 1, "x": 2, "c": 3}
        cons = [(t, c) for t in tables for c in self.tables[t].constraints if c.kind != "f"]
        for table, con in sorted(cons, key=lambda tc: order[tc[1].kind]):
            out.append(f"ALTER TABLE {qi(table)} ADD CONSTRAINT {qi(con.name)} {con.definition}")
        for table in tables:
            out += [definition for _, definition in self.tables[table].indexes]
        chosen = set(tables)
        for fk in self.foreign_keys:
            if fk.table in chosen and fk.ref_table in chosen:
                con = next(c for c in self.tables[fk.table].constraints if c.name == fk.name)
                out.append(
                    f"ALTER TABLE {qi(fk.table)} ADD CONSTRAINT {qi(fk.name)} {con.definition}"
                )
        return out

    def _sequences(self, tables: list[str]) -> list[SequenceInfo]:
        chosen = set(tables)
        return [
            s
            for s in self.sequences.values()
            if (s.owner is None and not s.identity) or (s.owner and s.owner[0] in chosen)
        ]


TABLES_SQL = """
SELECT c.oid, c.relname, greatest(c.reltuples, 0)::bigint
FROM pg_class c
WHERE c.relnamespace = %(ns)s::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
ORDER BY c.relname
"""
COLUMNS_SQL = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN (SELECT quote_ident(nspname) || '.' || quote_ident(collname)
                  FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace
                  WHERE co.oid = a.attcollation) END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = %(ns)s::regnamespace AND c.relkind = 'r'
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
CONSTRAINTS_SQL = """
SELECT co.conrelid, co.conname, co.contype, pg_get_constraintdef(co.oid),
       (SELECT relname FROM pg_class WHERE oid = co.confrelid),
       ARRAY(SELECT attname FROM unnest(co.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute ON attrelid = co.conrelid AND attnum = k.n ORDER BY k.i),
       ARRAY(SELECT attname FROM unnest(co.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute ON attrelid = co.confrelid AND attnum = k.n ORDER BY k.i),
       (SELECT relnamespace = %(ns)s::regnamespace FROM pg_class WHERE oid = co.confrelid)
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
WHERE c.relnamespace = %(ns)s::regnamespace AND co.contype IN ('p', 'u', 'c', 'f', 'x')
  AND co.conislocal
ORDER BY co.conrelid, co.conname
"""
INDEXES_SQL = """
SELECT i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid), quote_ident(ic.relname),
       quote_ident(%(schema)s)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = %(ns)s::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid
                  AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x'))
ORDER BY i.indrelid, ic.relname
"""
SEQUENCES_SQL = """
SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
       s.seqmax, s.seqcache, s.seqcycle, tc.relname, a.attname, d.deptype
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class tc ON tc.oid = d.refobjid
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE c.relnamespace = %(ns)s::regnamespace
ORDER BY c.relname
"""
ENUMS_SQL = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = %(ns)s::regnamespace
GROUP BY t.typname
"""


def _seq_options(row: tuple[Any, ...], with_type: bool = True) -> str:
    _, typ, start, inc, lo, hi, cache, cycle = row[:8]
    # An identity column's sequence takes its type from the column; AS is refused there.
    return (
        (f"AS {typ} " if with_type else "")
        + f"START WITH {start} INCREMENT BY {inc} MINVALUE {lo} MAXVALUE {hi} "
        f"CACHE {cache} {'CYCLE' if cycle else 'NO CYCLE'}"
    )


def _unqualify_index(definition: str, qname: str, qschema: str) -> str:
    """Drop the schema pg_get_indexdef always prints before the table (since 10.3)."""
    head = f" {qname} ON "
    pos = definition.find(head)
    if pos < 0:
        return definition
    pos += len(head)
    if definition.startswith("ONLY ", pos):
        pos += len("ONLY ")
    if definition.startswith(f"{qschema}.", pos):
        return definition[:pos] + definition[pos + len(qschema) + 1 :]
    return definition


def introspect(conn: psycopg.Connection[Any], schema: str) -> SchemaInfo:
    """Read ``schema``'s tables; sets ``search_path`` to it for the rest of the transaction."""
    conn.execute("SELECT set_config('search_path', %s, true)", [qi(schema)])
    info = SchemaInfo(schema)
    params = {"ns": qi(schema)}
    exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
    if not exists:
        return info
    names: dict[int, str] = {}
    for oid, name, est in conn.execute(TABLES_SQL, params):
        names[oid] = name
        info.tables[name] = TableInfo(name, [], [], [], int(est))
    seq_rows = conn.execute(SEQUENCES_SQL, params).fetchall()
    identity_opts = {
        (r[8], r[9]): f"({_seq_options(r, with_type=False)})"
        for r in seq_rows
        if r[10] == "i" and r[8]
    }
    for oid, col, typ, notnull, default, ident, gen, coll in conn.execute(COLUMNS_SQL, params):
        if oid not in names:
            continue
        table = names[oid]
        info.tables[table].columns.append(
            Column(
                col,
                typ,
                notnull,
                default if gen != "s" else None,
                ident or "",
                default if gen == "s" else None,
                coll,
                identity_opts.get((table, col), ""),
            )
        )
    for row in conn.execute(CONSTRAINTS_SQL, params):
        oid, name, kind, definition, ref, cols, ref_cols, same_schema = row
        if oid not in names:
            continue
        info.tables[names[oid]].constraints.append(Constraint(name, kind, definition))
        if kind == "f" and same_schema:
            info.foreign_keys.append(
                ForeignKey(name, names[oid], tuple(cols), ref, tuple(ref_cols))
            )
    for oid, name, definition, qname, qschema in conn.execute(
        INDEXES_SQL, {**params, "schema": schema}
    ):
        if oid in names:
            info.tables[names[oid]].indexes.append(
                (name, _unqualify_index(definition, qname, qschema))
            )
    for row in seq_rows:
        name, owner_table, owner_col, deptype = row[0], row[8], row[9], row[10]
        last, called = conn.execute(
            f"SELECT last_value, is_called FROM {qi(schema)}.{qi(name)}"
        ).fetchone() or (1, False)
        info.sequences[name] = SequenceInfo(
            name,
            _seq_options(row),
            int(last),
            bool(called),
            (owner_table, owner_col) if owner_table else None,
            deptype == "i",
        )
    info.enums = {name: list(labels) for name, labels in conn.execute(ENUMS_SQL, params)}
    return info
