"""Stage vs production parity: the differences between two sets of Swarm services (and
optionally two database schemas) that matter when stage should behave like production.

Services are paired by name after their prefix (``stage_api`` ↔ ``prod_api``); network
names lose the prefix too. Environment variables are compared by key only: values are
never read into the report. ``diff_summaries`` is pure; the Docker and PostgreSQL
readers feed it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "Difference",
    "diff_schemas",
    "diff_summaries",
    "read_schema",
    "read_services",
    "render_text",
    "summarize_service",
]


SCHEMA_PARTS = {"columns": "column", "constraints": "constraint", "indexes": "index"}


@dataclass(frozen=True)
class Difference:
    key: str
    kind: str
    stage: Any
    prod: Any
    allowed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag) of an image reference, ignoring a pinned digest."""
    ref = image.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def summarize_service(
    attrs: Mapping[str, Any], prefix: str, network_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The comparable facts of one service, from ``docker service inspect`` data."""
    spec = attrs.get("Spec", attrs)
    task = spec.get("TaskTemplate", {})
    cs = task.get("ContainerSpec", {})
    repo, tag = split_image(cs.get("Image", ""))
    mode = spec.get("Mode", {})
    if "Global" in mode:
        replicas: Any = "global"
    else:
        replicas = (mode.get("Replicated") or {}).get("Replicas", 1)
    names = network_names or {}
    nets = task.get("Networks") or spec.get("Networks") or []
    resources: dict[str, Any] = {}
    for section in ("Limits", "Reservations"):
        values = (task.get("Resources") or {}).get(section) or {}
        if values.get("NanoCPUs"):
            resources[f"{section.lower()}.cpus"] = values["NanoCPUs"] / 1e9
        if values.get("MemoryBytes"):
            resources[f"{section.lower()}.memory"] = values["MemoryBytes"]
    return {
        "image": repo,
        "tag": tag,
        "env": sorted({e.split("=", 1)[0] for e in cs.get("Env") or []}),
        "configs": sorted(
            (c.get("File") or {}).get("Name", c.get("ConfigName", ""))
            for c in cs.get("Configs") or []
        ),  # fmt: skip
        "secrets": sorted(
            (s.get("File") or {}).get("Name", s.get("SecretName", ""))
            for s in cs.get("Secrets") or []
        ),  # fmt: skip
        "networks": sorted(_strip(names.get(n["Target"], n["Target"]), prefix) for n in nets),
        "replicas": replicas,
        "resources": resources,
    }


def _allowed(key: str, allow: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in allow)


def _sets(out: list[Difference], key: str, stage: Iterable[str], prod: Iterable[str]) -> None:
    s, p = set(stage), set(prod)
    for item in sorted(s ^ p):
        out.append(
            Difference(
                f"{key}.{item}",
                key.rsplit(".", 1)[-1],
                "present" if item in s else None,
                "present" if item in p else None,
            )
        )


def diff_summaries(
    stage: Mapping[str, Mapping[str, Any]],
    prod: Mapping[str, Mapping[str, Any]],
    allow: Iterable[str] = (),
) -> list[Difference]:
    """Differences between service summaries keyed by unprefixed name."""
    out: list[Difference] = []
    for name in sorted(set(stage) | set(prod)):
        if name not in stage or name not in prod:
            out.append(
                Difference(
                    name,
                    "service",
                    "present" if name in stage else None,
                    "present" if name in prod else None,
                )
            )
            continue
        s, p = stage[name], prod[name]
        for scalar in ("image", "tag", "replicas"):
            if s.get(scalar) != p.get(scalar):
                out.append(Difference(f"{name}.{scalar}", scalar, s.get(scalar), p.get(scalar)))
        _sets(out, f"{name}.env", s.get("env", []), p.get("env", []))
        _sets(out, f"{name}.config", s.get("configs", []), p.get("configs", []))
        _sets(out, f"{name}.secret", s.get("secrets", []), p.get("secrets", []))
        _sets(out, f"{name}.network", s.get("networks", []), p.get("networks", []))
        sr, pr = s.get("resources", {}), p.get("resources", {})
        for res in sorted(set(sr) | set(pr)):
            if sr.get(res) != pr.get(res):
                out.append(Difference(f"{name}.resources.{res}", "resources", sr.get(res),
                                      pr.get(res)))  # fmt: skip
    return _apply_allow(out, allow)


def _apply_allow(diffs: list[Difference], allow: Iterable[str]) -> list[Difference]:
    patterns = list(allow)
    return [Difference(d.key, d.kind, d.stage, d.prod, _allowed(d.key, patterns)) for d in diffs]


def diff_schemas(
    stage: Mapping[str, Mapping[str, Any]],
    prod: Mapping[str, Mapping[str, Any]],
    allow: Iterable[str] = (),
) -> list[Difference]:
    """Differences between ``read_schema`` outputs; keys start with ``db.``."""
    out: list[Difference] = []
    for table in sorted(set(stage) | set(prod)):
        key = f"db.{table}"
        if table not in stage or table not in prod:
            out.append(Difference(key, "table", "present" if table in stage else None,
                                  "present" if table in prod else None))  # fmt: skip
            continue
        for part, kind in SCHEMA_PARTS.items():
            s, p = stage[table].get(part, {}), prod[table].get(part, {})
            for item in sorted(set(s) | set(p)):
                if s.get(item) != p.get(item):
                    sub = "" if kind == "column" else f".{kind}"
                    out.append(Difference(f"{key}{sub}.{item}", kind, s.get(item), p.get(item)))
    return _apply_allow(out, allow)


def read_schema(url: str, schema: str = "public") -> dict[str, dict[str, Any]]:
    """Tables → {columns, constraints, indexes} of a live database (read only)."""
    from .copy import _connect
    from .schema import introspect

    conn = _connect(url)
    try:
        conn.read_only = True
        info = introspect(conn, schema)
    finally:
        conn.close()
    return {
        name: {
            "columns": {
                c.name: f"{c.type}{' not null' if c.notnull else ''}"
                + (f" generated {c.generated}" if c.generated else "")
                for c in t.columns
            },
            "constraints": {c.name: c.definition for c in t.constraints},
            "indexes": dict(t.indexes),
        }
        for name, t in info.tables.items()
    }


def read_services(client: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """Summaries of the services named ``prefix*``, keyed by the name without the prefix."""
    networks = {n.id: n.name for n in client.networks.list()}
    out: dict[str, dict[str, Any]] = {}
    for svc in client.services.list(filters={"name": prefix}):
        name = svc.name
        if not name.startswith(prefix):  # the engine's name filter also matches substrings
            continue
        out[_strip(name, prefix)] = summarize_service(svc.attrs, prefix, networks)
    return out


def render_text(diffs: list[Difference], stage_prefix: str, prod_prefix: str) -> str:
    if not diffs:
        return f"stage ({stage_prefix}*) and production ({prod_prefix}*) match"

    def show(value: Any) -> str:
        return "-" if value is None else str(value)

    lines = [f"{'KEY':40}  {'STAGE':28}  {'PRODUCTION':28}"]
    for d in diffs:
        mark = "  (allowed)" if d.allowed else ""
        lines.append(f"{d.key:40}  {show(d.stage)[:28]:28}  {show(d.prod)[:28]:28}{mark}")
    blocking = sum(not d.allowed for d in diffs)
    lines.append(f"{len(diffs)} difference(s), {blocking} not allowed")
    return "\n".join(lines)
