"""Ask the engine which services want routing, in the shape ``render`` takes."""

from __future__ import annotations

from typing import Any

import docker

from .render import LABEL_PREFIX, ROLE_LABEL

__all__ = ["discover_services", "find_proxy_service"]


def discover_services(client: docker.DockerClient) -> list[dict[str, Any]]:
    """``[{"name", "id", "labels"}]`` of services with any ``autodock.proxy.*`` label,
    the proxy itself excluded. Sorted by name, so equal swarms render equal configs."""
    out = []
    for svc in client.api.services():
        spec = svc["Spec"]
        labels = spec.get("Labels") or {}
        if labels.get(ROLE_LABEL) == "proxy":
            continue
        if any(key.startswith(LABEL_PREFIX) for key in labels):
            out.append({"name": spec["Name"], "id": svc["ID"], "labels": dict(labels)})
    return sorted(out, key=lambda s: s["name"])


def find_proxy_service(client: docker.DockerClient, name: str | None = None) -> dict[str, Any]:
    """The proxy service: by ``name``, else the one labelled ``autodock.proxy.role=proxy``.

    Raises ``LookupError`` when there is none (or more than one, without a name).
    """
    if name:
        try:
            return dict(client.api.inspect_service(name))
        except docker.errors.NotFound:
            raise LookupError(f"proxy service {name!r} not found") from None
    found = client.api.services(filters={"label": f"{ROLE_LABEL}=proxy"})
    if len(found) != 1:
        what = "no service" if not found else f"{len(found)} services"
        raise LookupError(f"{what} labelled {ROLE_LABEL}=proxy; name the proxy service")
    return dict(found[0])
