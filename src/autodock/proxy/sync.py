"""Keep the proxy service's nginx.conf in step with the labelled services.

Docker configs are immutable, so a new routing table becomes a new config named after
its content hash (``autodock-proxy-<hash>``) and the proxy service's config reference is
switched to it; swarm then replaces the proxy tasks according to the service's own
update policy. Configs this class created and nothing uses any more are removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from .discover import discover_services, find_proxy_service
from .render import RenderOptions, config_hash, render, routes_from_services

__all__ = [
    "CONFIG_PREFIX",
    "NGINX_CONF_PATH",
    "ProxySync",
    "SyncResult",
    "update_order_problems",
]

log = logging.getLogger("autodock.proxy")

CONFIG_PREFIX = "autodock-proxy-"
NGINX_CONF_PATH = "/etc/nginx/nginx.conf"
MANAGED_LABEL = "autodock.proxy.managed"


@dataclass
class SyncResult:
    changed: bool
    config_name: str
    routes: int
    problems: list[str]


def update_order_problems(spec: dict[str, Any]) -> list[str]:
    """Swarm cannot start a second task holding the same host-mode port on a node, so a
    start-first update of such a proxy waits forever ("host-mode port already in use")."""
    order = (spec.get("UpdateConfig") or {}).get("Order")
    ports = (spec.get("EndpointSpec") or {}).get("Ports") or []
    if order == "start-first" and any(p.get("PublishMode") == "host" for p in ports):
        return [
            f"{spec.get('Name')}: update order start-first with host-mode ports never "
            "completes; use stop-first (see docs/proxy.md)"
        ]
    return []


class ProxySync:
    """Re-render on every change; ``await ProxySync(client).run()`` until cancelled.

    ``client`` is a ``docker.DockerClient`` or a zero-argument callable returning one
    (e.g. ``lambda: connection.client`` with autodock's ``DockerConnection``), so a
    reconnecting connection can be shared with the deploy executor.
    """

    def __init__(
        self,
        client: docker.DockerClient | Callable[[], docker.DockerClient],
        *,
        proxy_service: str | None = None,
        interval: float = 2.0,
        options: RenderOptions | None = None,
        target: str = NGINX_CONF_PATH,
    ):
        self._client = client
        self.proxy_service = proxy_service
        self.interval = interval
        self.options = options or RenderOptions()
        self.target = target

    @property
    def client(self) -> docker.DockerClient:
        return self._client() if callable(self._client) else self._client

    async def run(self) -> None:
        """Poll the swarm every ``interval`` seconds and sync; errors are logged, not fatal.

        Polling (a cheap ``GET /services``) rather than the event stream: it cannot
        miss an event across engine restarts, and the proxy is usually idle anyway.
        """
        last_error = ""
        while True:
            try:
                result = await asyncio.to_thread(self.sync_once)
                if result.changed:
                    log.info("proxy config %s: %d routes", result.config_name, result.routes)
                    for problem in result.problems:
                        log.warning("proxy: %s", problem)
                last_error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the proxy keeps its last good config
                if str(exc) != last_error:
                    log.warning("proxy sync failed: %s", exc)
                last_error = str(exc)
            await asyncio.sleep(self.interval)

    def render_current(self) -> tuple[str, list[str], int]:
        services = discover_services(self.client)
        routes, problems = routes_from_services(services)
        return render(services, self.options), problems, len(routes)

    def sync_once(self) -> SyncResult:
        """Render, and when the text differs from what the proxy runs, roll it out."""
        text, problems, n_routes = self.render_current()
        name = f"{CONFIG_PREFIX}{config_hash(text)}"
        proxy = find_proxy_service(self.client, self.proxy_service)
        spec = proxy["Spec"]
        problems += update_order_problems(spec)
        container = dict(spec["TaskTemplate"]["ContainerSpec"])
        configs: list[dict[str, Any]] = list(container.get("Configs") or [])
        current = next(
            (c for c in configs if (c.get("File") or {}).get("Name") == self.target), None
        )
        if current is not None and current.get("ConfigName") == name:
            return SyncResult(False, name, n_routes, problems)
        config_id = self._ensure_config(name, text)
        entry = {
            "ConfigID": config_id,
            "ConfigName": name,
            "File": {"Name": self.target, "UID": "0", "GID": "0", "Mode": 0o444},
        }
        container["Configs"] = [c for c in configs if c is not current] + [entry]
        self.client.api.update_service(
            proxy["ID"],
            proxy["Version"]["Index"],
            task_template={"ContainerSpec": container},
            fetch_current_spec=True,
        )
        # The old one stays: the service's previous spec (rollback) still names it.
        self._prune(keep={name, str((current or {}).get("ConfigName", ""))})
        return SyncResult(True, name, n_routes, problems)

    def _ensure_config(self, name: str, text: str) -> str:
        try:
            return str(self.client.api.inspect_config(name)["ID"])
        except docker.errors.NotFound:
            pass
        created = self.client.api.create_config(name, text.encode(), labels={MANAGED_LABEL: "true"})
        return str(created["ID"])

    def _prune(self, keep: set[str]) -> None:
        """Remove our old configs; swarm refuses while a task still uses one, which is fine:
        the next change retries."""
        for cfg in self.client.api.configs(filters={"label": MANAGED_LABEL}):
            name = cfg["Spec"]["Name"]
            if name in keep or not name.startswith(CONFIG_PREFIX):
                continue
            try:
                self.client.api.remove_config(cfg["ID"])
            except docker.errors.APIError:
                log.debug("config %s still in use", name)
