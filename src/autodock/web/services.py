"""What the dashboard and ``autodock status`` show per Swarm service: image, tag and
digest, replicas, placement, matching rules, pauses and the last deploy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import docker

from ..config import Config, ServiceAction
from ..executors.rollback import previous_image
from ..executors.swarm import DockerConnection, _engine_call
from ..models import DeployRecord, DeployStatus, PushEvent
from ..planner import LabelledService, plan
from ..reference import InvalidReference, parse_image
from ..store import DeployFilter, Store

__all__ = ["describe_services", "is_held", "matching_rules", "rule_names"]


def is_held(record: DeployRecord, pause_keys: set[str]) -> bool:
    """A queued deploy that waits because its rule or target is paused."""
    return (
        record.status is DeployStatus.QUEUED
        and not record.rule.startswith("manual:")
        and (f"rule:{record.rule}" in pause_keys or record.target_key in pause_keys)
    )


def rule_names(config: Config, labelled: Iterable[LabelledService]) -> list[str]:
    return [r.display_name for r in config.rules] + [f"label:{s.name}" for s in labelled]


def matching_rules(
    config: Config, labelled: list[LabelledService], name: str, image: str | None
) -> list[str]:
    """Rules that deploy this service: those a push of its current repo:tag would plan
    for it, and those that name it whatever the tag."""
    found: list[str] = []
    ref = _parse(image)
    if ref is not None and ref.tag:
        event = PushEvent(source="manual", repo=ref.path, tag=ref.tag, registry=ref.domain)
        planned = plan(event, config, labelled)
        found += [p.rule for p in planned if p.kind == "service" and p.target == name]
    for rule in config.rules:
        for action in rule.all_actions():
            if isinstance(action, ServiceAction) and action.service == name:
                found.append(rule.display_name)
    found += [f"label:{s.name}" for s in labelled if s.name == name]
    return list(dict.fromkeys(found))


def _parse(image: str | None) -> Any:
    if not image:
        return None
    try:
        return parse_image(image)
    except InvalidReference:
        return None


def describe_services(
    conn: DockerConnection,
    store: Store,
    config: Config,
    labelled: list[LabelledService],
    name: str | None = None,
) -> list[dict[str, Any]]:
    """Blocking (call from a thread): one dict per Swarm service, sorted by name."""

    def call(c: docker.DockerClient) -> tuple[Any, Any, Any]:
        filters = {"name": name} if name else None
        services = c.api.services(filters=filters, status=True)
        tasks = c.api.tasks(filters={"desired-state": "running"})
        return services, tasks, c.api.nodes()

    services, tasks, nodes = _engine_call(conn, call)
    hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname", n["ID"][:12]) for n in nodes}
    placement: dict[str, Counter[str]] = {}
    for task in tasks:
        if task["Status"]["State"] == "running" and task.get("NodeID"):
            host = hostnames.get(task["NodeID"], "?")
            placement.setdefault(task["ServiceID"], Counter())[host] += 1
    pause_keys = {p["key"] for p in store.list_pauses()}
    out = []
    for svc in services:
        spec = svc["Spec"]
        svc_name = spec["Name"]
        if name and svc_name != name:
            continue  # the engine's name filter matches prefixes
        image = spec["TaskTemplate"]["ContainerSpec"].get("Image")
        ref = _parse(image)
        status = svc.get("ServiceStatus") or {}
        mode = "global" if "Global" in (spec.get("Mode") or {}) else "replicated"
        desired = status.get("DesiredTasks")
        if desired is None:
            desired = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
        rules = matching_rules(config, labelled, svc_name, image)
        paused_by = sorted(
            k for k in pause_keys if k == f"service:{svc_name}" or k in {f"rule:{r}" for r in rules}
        )
        last = store.list_deploys(DeployFilter(target=svc_name, limit=1))
        update = svc.get("UpdateStatus") or {}
        out.append(
            {
                "name": svc_name,
                "id": svc["ID"],
                "image": image,
                "image_name": ref.name if ref else image,
                "tag": ref.tag if ref else None,
                "digest": ref.digest if ref else None,
                "mode": mode,
                "replicas": {
                    "running": int(status.get("RunningTasks", 0)),
                    "desired": int(desired),
                },
                "nodes": [
                    {"node": n, "tasks": c} for n, c in sorted(placement.get(svc["ID"], {}).items())
                ],
                "update_state": update.get("State"),
                "update_message": update.get("Message"),
                "previous_image": previous_image(svc),
                "rules": rules,
                "managed": bool(rules),
                "paused": bool(paused_by),
                "paused_by": paused_by,
                "last_deploy": last[0].to_dict() if last else None,
            }
        )
    return sorted(out, key=lambda s: s["name"])
