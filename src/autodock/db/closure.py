"""Which rows a (subset) clone copies: foreign-key closure, planned as SQL. Pure.

Chosen tables keep their ``--where`` rows (or all rows). Every table they reference
joins the clone, and each restricted table also gets the rows that the copied rows of
its referencing tables point at, so every foreign key on stage is satisfied. Rows are
selected on the source inside one snapshot, so the queries of different tables agree.

Filters propagate upwards only (to referenced tables). To shrink a child table, give
it its own ``--where``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from . import CloneError

__all__ = ["ClonePlan", "ForeignKey", "TablePlan", "plan_clone", "qi", "qualified"]

Mode = Literal["all", "filtered", "referenced"]


def qi(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{qi(schema)}.{qi(table)}"


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class TablePlan:
    name: str
    mode: Mode
    reason: str
    query: str


@dataclass
class ClonePlan:
    schema: str
    tables: list[TablePlan] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tables]

    def get(self, name: str) -> TablePlan:
        return next(t for t in self.tables if t.name == name)


def _split_names(values: Iterable[str]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def plan_clone(
    schema: str,
    tables: Iterable[str],
    fks: Iterable[ForeignKey],
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    where: Mapping[str, str] | None = None,
) -> ClonePlan:
    """Plan the tables and row queries of a clone of ``schema``."""
    all_tables = set(tables)
    fks = [fk for fk in fks if fk.table in all_tables and fk.ref_table in all_tables]
    where = dict(where or {})
    wanted = _split_names(include) if include is not None else sorted(all_tables)
    excluded = set(_split_names(exclude))
    unknown = sorted((set(wanted) | excluded | set(where)) - all_tables)
    if unknown:
        raise CloneError(f"no such table(s) in schema {schema}: {', '.join(unknown)}")
    chosen = [t for t in dict.fromkeys(wanted) if t not in excluded]
    if not chosen:
        raise CloneError("nothing to clone: every table is excluded")

    reason: dict[str, str] = {t: "chosen" for t in chosen}
    queue = list(chosen)
    while queue:
        child = queue.pop(0)
        for fk in fks:
            if fk.table != child or fk.ref_table in reason:
                continue
            if fk.ref_table in excluded:
                raise CloneError(
                    f"{child} references {fk.ref_table} ({fk.name}), so {fk.ref_table} cannot "
                    f"be excluded: include it, or exclude {child} too"
                )
            reason[fk.ref_table] = f"referenced by {child} ({fk.name})"
            queue.append(fk.ref_table)
    stray = sorted(set(where) - set(reason))
    if stray:
        raise CloneError(f"--where names table(s) that are not cloned: {', '.join(stray)}")

    included = set(reason)
    whole = {t for t in chosen if t not in where}
    restricted = included - whole
    deps = {
        t: sorted({fk.table for fk in fks if fk.ref_table == t and fk.table in included} - {t})
        for t in restricted
    }
    _check_acyclic(deps, restricted)

    plan = ClonePlan(schema)
    for name in _parents_first(included, fks):
        if name in whole:
            mode: Mode = "all"
            query = f"SELECT * FROM {qualified(schema, name)}"
        else:
            mode = "filtered" if name in where else "referenced"
            query = _restricted_query(schema, name, restricted, whole, fks, where)
        plan.tables.append(TablePlan(name, mode, reason[name], query))
    return plan


def _check_acyclic(deps: dict[str, list[str]], restricted: set[str]) -> None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for child in deps.get(node, []):
            if child not in restricted:
                continue
            if state.get(child) == 1:
                cycle = " -> ".join([*path[path.index(child) :], child])
                raise CloneError(
                    f"foreign keys form a cycle between filtered tables ({cycle}); "
                    "clone one of them whole (no --where) to break it"
                )
            if child not in state:
                visit(child, [*path, child])
        state[node] = 2

    for node in sorted(restricted):
        if node not in state:
            visit(node, [node])


def _parents_first(included: set[str], fks: list[ForeignKey]) -> list[str]:
    parents = {t: {fk.ref_table for fk in fks if fk.table == t} & included - {t} for t in included}
    order: list[str] = []
    remaining = set(included)
    while remaining:
        ready = sorted(t for t in remaining if not parents[t] - set(order))
        if not ready:  # a cycle among whole tables: any order loads, constraints come later
            ready = sorted(remaining)
        order += ready
        remaining -= set(ready)
    return order


def _cols(prefix: str, cols: Iterable[str]) -> str:
    return ", ".join(f"{prefix}{qi(c)}" for c in cols)


def _restricted_query(
    schema: str,
    target: str,
    restricted: set[str],
    whole: set[str],
    fks: list[ForeignKey],
    where: Mapping[str, str],
) -> str:
    # CTEs for the target and every restricted table whose rows it depends on, deepest first.
    needed: list[str] = []

    def collect(t: str) -> None:
        for fk in fks:
            child = fk.table
            if fk.ref_table == t and child != t and child in restricted and child not in needed:
                collect(child)
        if t not in needed:
            needed.append(t)

    collect(target)
    alias = {t: f"k{i}" for i, t in enumerate(needed)}
    ctes: list[str] = []
    for t in needed:
        table = qualified(schema, t)
        preds = [f"({where[t]})"] if t in where else []
        for fk in fks:
            if fk.ref_table != t or fk.table == t:
                continue
            if fk.table in whole:
                source = qualified(schema, fk.table)
            elif fk.table in restricted:
                source = alias[fk.table]
            else:
                continue
            preds.append(
                f"({_cols('', fk.ref_columns)}) IN (SELECT {_cols('', fk.columns)} FROM {source})"
            )
        pred = " OR ".join(preds) or "FALSE"
        selfs = [fk for fk in fks if fk.table == t and fk.ref_table == t]
        if not selfs:
            ctes.append(f"{alias[t]} AS (SELECT * FROM {table} WHERE {pred})")
            continue
        # Self-references (parent_id → id) need every ancestor row: a recursive walk
        # over row ids, since rows themselves may hold types without equality (json).
        carried = [c for fk in selfs for c in fk.columns]
        names = [f"c{i}" for i in range(len(carried))]
        cols = ", ".join(["_tid", *names])
        joins: list[str] = []
        pos = 0
        for fk in selfs:
            lhs = _cols("t.", fk.ref_columns)
            rhs = ", ".join(f"r.{n}" for n in names[pos : pos + len(fk.columns)])
            joins.append(f"({lhs}) = ({rhs})")
            pos += len(fk.columns)
        ctes.append(
            f"{alias[t]}_r({cols}) AS (SELECT ctid, {_cols('', carried)} FROM {table} "
            f"WHERE {pred} UNION SELECT t.ctid, {_cols('t.', carried)} FROM {table} t "
            f"JOIN {alias[t]}_r r ON {' OR '.join(joins)})"
        )
        ctes.append(
            f"{alias[t]} AS (SELECT * FROM {table} WHERE ctid IN (SELECT _tid FROM {alias[t]}_r))"
        )
    return f"WITH RECURSIVE {', '.join(ctes)} SELECT * FROM {alias[target]}"
