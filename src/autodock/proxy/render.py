"""Render the proxy's nginx.conf from service labels. Pure: no I/O, deterministic.

A service opts in with labels::

    autodock.proxy.host   = wallets.stage.example[,other.example]   (virtual hosts)
    autodock.proxy.path   = /api/           (prefix; default /)
    autodock.proxy.port   = 8080            (the port the service listens on; default 80)
    autodock.proxy.strip  = true            (drop the prefix before proxying; default false)

A service with none of host/path/port is not routed. Label values come from whoever may
create services, so every value is checked against a strict pattern before it reaches
the config: a bad value skips that service (reported) instead of breaking the proxy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LABEL_PREFIX",
    "ProxyRoute",
    "RenderOptions",
    "config_hash",
    "render",
    "routes_from_services",
]

LABEL_PREFIX = "autodock.proxy."
ROLE_LABEL = f"{LABEL_PREFIX}role"  # "proxy" marks the proxy service itself

_HOST = re.compile(
    r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)  # noqa: E501
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, order=True)
class ProxyRoute:
    host: str  # "" routes in the default server (any Host)
    path: str  # always ends with "/"
    service: str
    port: int
    strip: bool = False


@dataclass(frozen=True)
class RenderOptions:
    listen: int = 80
    # Docker's embedded DNS: names are resolved per request, so services that come
    # later, go away or move (dnsrr task IPs change on every restart) never break nginx.
    resolver: str = "127.0.0.11"
    resolver_valid: str = "5s"
    worker_processes: str = "auto"


def routes_from_services(
    services: Iterable[Mapping[str, Any]],
) -> tuple[list[ProxyRoute], list[str]]:
    """Routes from ``[{"name": ..., "labels": {...}}, ...]`` and the problems found.

    When two services claim the same host and path, the first by name keeps it.
    """
    routes: dict[tuple[str, str], ProxyRoute] = {}
    problems: list[str] = []
    for svc in sorted(services, key=lambda s: str(s.get("name", ""))):
        name = str(svc.get("name", ""))
        labels = {
            k.removeprefix(LABEL_PREFIX): str(v)
            for k, v in (svc.get("labels") or {}).items()
            if k.startswith(LABEL_PREFIX)
        }
        if labels.get("role") == "proxy" or not ({"host", "path", "port"} & labels.keys()):
            continue
        try:
            svc_routes = _service_routes(name, labels)
        except ValueError as exc:
            problems.append(f"{name}: {exc}; not routed")
            continue
        for route in svc_routes:
            key = (route.host, route.path)
            if key in routes:
                problems.append(
                    f"{name}: {route.host or '*'}{route.path} is already routed to "
                    f"{routes[key].service}; not routed"
                )
                continue
            routes[key] = route
    return sorted(routes.values()), problems


def _service_routes(name: str, labels: Mapping[str, str]) -> list[ProxyRoute]:
    if not _SERVICE.match(name):
        raise ValueError(f"invalid service name {name!r}")
    hosts = [h.strip().lower() for h in labels.get("host", "").split(",") if h.strip()]
    for host in hosts:
        if not _HOST.match(host):
            raise ValueError(f"invalid host {host!r}")
    path = labels.get("path", "/").strip() or "/"
    if not _PATH.match(path) or "/../" in f"{path}/" or "//" in path:
        raise ValueError(f"invalid path {path!r} (use /letters-digits._~-/)")
    if not path.endswith("/"):
        path += "/"
    try:
        port = int(labels.get("port", "80"))
    except ValueError:
        raise ValueError(f"invalid port {labels.get('port')!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid port {port}")
    strip_value = labels.get("strip", "false").strip().lower()
    if strip_value not in _TRUE | _FALSE:
        raise ValueError(f"invalid strip {strip_value!r} (true or false)")
    strip = strip_value in _TRUE and path != "/"
    return [ProxyRoute(host, path, name, port, strip) for host in (hosts or [""])]


def config_hash(text: str) -> str:
    """Short content hash: names the immutable Docker config holding ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def render(services: Iterable[Mapping[str, Any]], options: RenderOptions | None = None) -> str:
    """The complete nginx.conf for ``services`` (see the module docstring for labels)."""
    opts = options or RenderOptions()
    routes, problems = routes_from_services(services)
    by_host: dict[str, list[ProxyRoute]] = {}
    for route in routes:
        by_host.setdefault(route.host, []).append(route)
    counter = iter(range(1, 1_000_000))
    out = [
        "# Rendered by autodock from service labels (autodock.proxy.*). Do not edit: it is",
        "# replaced whenever a labelled service appears, changes or goes.",
        *(f"# skipped: {p}" for p in problems),
        f"worker_processes {opts.worker_processes};",
        "error_log stderr warn;",
        "events { worker_connections 1024; }",
        "",
        "http {",
        "    access_log off;",
        "    server_tokens off;",
        f"    resolver {opts.resolver} valid={opts.resolver_valid} ipv6=off;",
        "    resolver_timeout 2s;",
        "    proxy_http_version 1.1;",
        "    proxy_connect_timeout 5s;",
        "    proxy_set_header Host $host;",
        "    proxy_set_header X-Real-IP $remote_addr;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_set_header Upgrade $http_upgrade;",
        "    proxy_set_header Connection $connection_upgrade;",
        "    map $http_upgrade $connection_upgrade { default upgrade; '' close; }",
        "",
        "    server {",
        f"        listen {opts.listen} default_server;",
        '        location = /__autodock/health { return 200 "ok\\n"; }',
        *_locations(by_host.pop("", []), counter, default=True),
        "    }",
    ]
    for host, host_routes in sorted(by_host.items()):
        out += [
            "",
            "    server {",
            f"        listen {opts.listen};",
            f"        server_name {host};",
            *_locations(host_routes, counter, default=False),
            "    }",
        ]
    out.append("}")
    return "\n".join(out) + "\n"


def _locations(routes: list[ProxyRoute], counter: Iterable[int], default: bool) -> list[str]:
    lines: list[str] = []
    has_root = any(r.path == "/" for r in routes)
    for route, n in zip(routes, counter, strict=False):
        var = f"$upstream_{n}"
        lines.append(f"        location {route.path} {{")
        lines.append(f"            set {var} http://{route.service}:{route.port};")
        if route.strip:
            prefix = route.path.replace(".", r"\.")
            lines.append(f"            rewrite ^{prefix}(.*)$ /$1 break;")
        lines.append(f"            proxy_pass {var};")
        # Tells a client (and `service add`) which route answered: not the default 404.
        lines.append(f"            add_header X-Autodock-Service {route.service} always;")
        lines.append("        }")
        if route.path != "/":
            # /api (no slash) would otherwise fall through to another location.
            lines.append(
                f"        location = {route.path.rstrip('/')} {{ return 301 {route.path}; }}"
            )
    if default and not has_root:
        lines.append('        location / { return 404 "autodock proxy: no route\\n"; }')
    return lines
