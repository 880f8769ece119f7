"""``autodock service add``: onboard a service to the stage in one command.

What the seed's "Howto: add a new service" did by hand in portainer, nginx and a JSON
file: create the service with autodock's labels (so pushes deploy it without a rule),
its proxy route and placement, wait until it runs and answers through the proxy, and
print what to register in the registry.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field
from typing import Any

import click
import docker
import docker.errors
from docker.types import (
    ConfigReference,
    EndpointSpec,
    RestartPolicy,
    SecretReference,
    ServiceMode,
    UpdateConfig,
)

from ..proxy.discover import find_proxy_service
from ..proxy.render import LABEL_PREFIX
from ..reference import InvalidReference, parse_image

__all__ = ["ServiceRequest", "add_service", "service", "service_labels"]

FAILED = frozenset({"failed", "rejected", "orphaned"})
WEBHOOK_PORT = 58732
SECOND = 1_000_000_000


@dataclass
class ServiceRequest:
    name: str
    image: str
    node: str | None = None  # manager | worker | a node hostname
    hosts: list[str] = field(default_factory=list)
    path: str | None = None
    port: int | None = None
    strip: bool = False
    networks: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    replicas: int = 1
    endpoint_mode: str = "dnsrr"

    @property
    def routed(self) -> bool:
        return bool(self.hosts or self.path)


def service_labels(req: ServiceRequest) -> dict[str, str]:
    """The service labels: autodock.repo/tag (deploy on push) and the proxy route."""
    try:
        ref = parse_image(req.image)
    except InvalidReference as exc:
        raise click.BadParameter(str(exc), param_hint="--image") from None
    if not ref.tag:
        raise click.BadParameter("give a tag: REPO:TAG", param_hint="--image")
    labels = {"autodock.repo": ref.path, "autodock.tag": ref.tag}
    if req.routed:
        if req.hosts:
            labels[f"{LABEL_PREFIX}host"] = ",".join(req.hosts)
        if req.path:
            labels[f"{LABEL_PREFIX}path"] = req.path
        labels[f"{LABEL_PREFIX}port"] = str(req.port or 80)
        if req.strip:
            labels[f"{LABEL_PREFIX}strip"] = "true"
    return labels


def placement_constraints(node: str | None) -> list[str]:
    if node is None:
        return []
    if node in ("manager", "worker"):
        return [f"node.role=={node}"]
    return [f"node.hostname=={node}"]


def _lookup(kind: str, getter: Any, name: str) -> Any:
    try:
        return getter(name)
    except docker.errors.NotFound:
        raise click.ClickException(f"{kind} {name!r} does not exist; create it first") from None


def add_service(
    client: docker.DockerClient,
    req: ServiceRequest,
    *,
    proxy_service: str | None = None,
    sync_proxy: bool = True,
    timeout: float = 120.0,
    say: Any = click.echo,
) -> dict[str, Any]:
    """Create the service and wait for it; returns what was learnt (proxy, answer)."""
    labels = service_labels(req)
    proxy = None
    if req.routed:
        try:
            proxy = find_proxy_service(client, proxy_service)
        except LookupError as exc:
            say(f"no proxy: {exc}; the route takes effect when a proxy syncs")
    networks = list(req.networks)
    if proxy is not None:
        proxy_networks = _proxy_networks(client, proxy)
        if not networks:
            # Share the proxy's overlay so it can resolve and reach the new service.
            networks = proxy_networks
            say(f"joining the proxy's network(s): {', '.join(networks) or '-'}")
        elif not set(networks) & set(proxy_networks):
            say(f"warning: the proxy is on {', '.join(proxy_networks)}, not on any of these")
    secrets = [
        SecretReference(s.id, s.name)
        for s in (_lookup("secret", client.secrets.get, n) for n in req.secrets)
    ]
    configs = [
        ConfigReference(c.id, c.name)
        for c in (_lookup("config", client.configs.get, n) for n in req.configs)
    ]
    try:
        client.services.get(req.name)
        raise click.ClickException(f"service {req.name!r} already exists")
    except docker.errors.NotFound:
        pass
    say(f"creating {req.name} from {req.image}")
    svc = client.services.create(
        req.image,
        name=req.name,
        labels=labels,
        env=req.env,
        networks=networks,
        secrets=secrets,
        configs=configs,
        mode=ServiceMode("replicated", replicas=req.replicas),
        constraints=placement_constraints(req.node),
        endpoint_spec=EndpointSpec(mode=req.endpoint_mode),
        update_config=UpdateConfig(order="start-first", failure_action="rollback"),
        restart_policy=RestartPolicy(condition="on-failure", delay=SECOND, max_attempts=5),
    )
    _wait_running(client, svc.id, req.replicas, timeout, say)
    result: dict[str, Any] = {"id": svc.id, "labels": labels, "proxy": None, "answer": None}
    if proxy is not None:
        result["proxy"] = proxy["Spec"]["Name"]
        before = proxy_endpoints(client, proxy)  # before the roll takes tasks away
        if sync_proxy:
            from ..proxy.sync import ProxySync

            synced = ProxySync(client, proxy_service=proxy["ID"]).sync_once()
            say(f"proxy config {synced.config_name} ({synced.routes} routes)")
        result["answer"] = _wait_through_proxy(client, proxy, req, before, timeout, say)
    return result


def _proxy_networks(client: docker.DockerClient, proxy: dict[str, Any]) -> list[str]:
    out = []
    for net in proxy["Spec"]["TaskTemplate"].get("Networks") or []:
        info = client.api.inspect_network(net["Target"])
        if not info.get("Ingress"):
            out.append(info["Name"])
    return out


def _wait_running(
    client: docker.DockerClient, service_id: str, replicas: int, timeout: float, say: Any
) -> None:
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        tasks = client.api.tasks(filters={"service": service_id})
        running = [
            t for t in tasks if t["Status"]["State"] == "running" and t["DesiredState"] == "running"
        ]
        failed = [t for t in tasks if t["Status"]["State"] in FAILED]
        text = f"{len(running)}/{replicas} tasks running"
        if text != shown:
            nodes = sorted({t.get("NodeID", "")[:12] for t in running})
            say(text + (f" on {', '.join(nodes)}" if nodes else ""))
            shown = text
        if len(running) >= replicas:
            return
        pending = [t for t in tasks if t["Status"]["State"] == "pending"]
        if len(failed) >= 3 or time.monotonic() > deadline:
            errors = "; ".join(
                str(t["Status"].get("Err") or t["Status"].get("Message")) for t in failed + pending
            )
            raise click.ClickException(f"{text} after {timeout:g}s: {errors or 'no error given'}")
        time.sleep(0.5)


def proxy_endpoints(client: docker.DockerClient, proxy: dict[str, Any]) -> list[tuple[str, int]]:
    """(node address, port) wherever a proxy task should run, including tasks that are
    being replaced right now (their node must answer too once the roll is done)."""
    ports = (proxy["Spec"].get("EndpointSpec") or {}).get("Ports") or []
    published = [
        int(p["PublishedPort"])
        for p in ports
        if p.get("TargetPort") == 80 and p.get("PublishMode") == "host" and p.get("PublishedPort")
    ]
    if not published:
        return []
    tasks = client.api.tasks(filters={"service": proxy["ID"], "desired-state": "running"})
    addresses = {n.id: n.attrs["Status"].get("Addr") for n in client.nodes.list()}
    nodes = {addresses.get(t.get("NodeID", "")) for t in tasks} - {None, ""}
    return sorted((str(addr), published[0]) for addr in nodes)


def http_get(addr: str, port: int, host: str | None, path: str) -> tuple[int, str, str | None]:
    """(status, body, the X-Autodock-Service header the proxy adds to routed answers)."""
    conn = http.client.HTTPConnection(addr, port, timeout=3)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        resp = conn.getresponse()
        body = resp.read(2048).decode(errors="replace")
        return resp.status, body, resp.getheader("X-Autodock-Service")
    finally:
        conn.close()


def _wait_through_proxy(
    client: docker.DockerClient,
    proxy: dict[str, Any],
    req: ServiceRequest,
    known: list[tuple[str, int]],
    timeout: float,
    say: Any,
) -> str | None:
    # A node whose proxy task is being replaced (stop-first) briefly has no task wanted
    # running: keep every node ever seen, or a half-rolled proxy would look done.
    endpoints = set(known) | set(proxy_endpoints(client, proxy))
    if not endpoints:
        say("the proxy publishes no host-mode port for 80: not checking the route")
        return None
    host = req.hosts[0] if req.hosts else None
    path = req.path or "/"
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        answers = []
        endpoints |= set(proxy_endpoints(client, proxy))
        for addr, port in sorted(endpoints):
            try:
                status, body, routed_to = http_get(addr, port, host, path)
            except OSError as exc:
                last = f"{addr}:{port}: {exc}"
                break
            # Another service's answer: the proxy still runs the old config.
            # 502/503/504: nginx cannot reach the new service yet (DNS, task start).
            if routed_to != req.name or status >= 502:
                last = f"{addr}:{port}: HTTP {status} from {routed_to or 'the proxy'}"
                break
            answers.append(f"{addr}:{port} → HTTP {status} {body.strip()[:80]}")
        else:
            for line in answers:
                say(f"answers through the proxy: {line}")
            return answers[0]
        time.sleep(0.5)
    raise click.ClickException(f"not answering through the proxy after {timeout:g}s ({last})")


# ---------------------------------------------------------------------- CLI


@click.group()
def service() -> None:
    """Services on the stage: onboard one in a single command."""


@service.command()
@click.argument("name")
@click.option("--image", required=True, metavar="REPO:TAG", help="e.g. org/app:stage")
@click.option("--node", help="Where it runs: manager, worker, or a node hostname [anywhere].")
@click.option("--host", "hosts", multiple=True, help="Virtual host the proxy routes to it.")
@click.option("--path", help="URL prefix the proxy routes to it [/].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port it listens on [80].")
@click.option("--strip", is_flag=True, help="Drop --path before proxying.")
@click.option("--network", "networks", multiple=True, help="Overlay to join [the proxy's].")
@click.option("--secret", "secrets", multiple=True, help="Existing secret to mount.")
@click.option("--config", "configs", multiple=True, help="Existing config to mount.")
@click.option("--env", "-e", multiple=True, help="KEY=VALUE (swarm templates work).")
@click.option("--replicas", default=1, show_default=True, type=click.IntRange(0, 100))
@click.option("--proxy-service", help="The proxy service [labelled autodock.proxy.role=proxy].")
@click.option("--no-proxy-sync", is_flag=True, help="Leave the proxy to `serve`'s sync.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait.")
@click.option("--webhook-base", help="Where autodock listens [http://MANAGER:58732].")
@click.option("--docker-host", envvar="DOCKER_HOST", help="Docker engine URL [env DOCKER_HOST].")
def add(
    name: str,
    image: str,
    node: str | None,
    hosts: tuple[str, ...],
    path: str | None,
    port: int | None,
    strip: bool,
    networks: tuple[str, ...],
    secrets: tuple[str, ...],
    configs: tuple[str, ...],
    env: tuple[str, ...],
    replicas: int,
    proxy_service: str | None,
    no_proxy_sync: bool,
    timeout: float,
    webhook_base: str | None,
    docker_host: str | None,
) -> None:
    """Create service NAME from --image, routed and labelled for autodock; wait for it."""
    req = ServiceRequest(
        name=name,
        image=image,
        node=node,
        hosts=list(hosts),
        path=path,
        port=port,
        strip=strip,
        networks=list(networks),
        secrets=list(secrets),
        configs=list(configs),
        env=list(env),
        replicas=replicas,
    )
    client = (
        docker.DockerClient(base_url=docker_host, timeout=60)
        if docker_host
        else docker.from_env(timeout=60)
    )
    try:
        result = add_service(
            client,
            req,
            proxy_service=proxy_service,
            sync_proxy=not no_proxy_sync,
            timeout=timeout,
            say=lambda line: click.echo(f"[service] {line}", err=True),
        )
        base = webhook_base or f"http://{_manager_addr(client)}:{WEBHOOK_PORT}"
    finally:
        client.close()
    scheme, _, rest = base.partition("://")
    labels = result["labels"]
    click.echo(
        f"service {name} is up: deploys on pushes of {labels['autodock.repo']}:"
        f"{labels['autodock.tag']}"
    )
    click.echo("register one of these in the registry:")
    click.echo(f"  Docker Hub webhook:   {scheme}://USER:PASSWORD@{rest}/autodock/v1/")
    click.echo(f"  Registry v2 endpoint: {base}/hooks/registry  (Authorization: Basic …)")
    click.echo(
        "  USER:PASSWORD are autodock's webhook credentials (serve --http-auth-file, or "
        "the autodock_http_auth secret in examples/autodock-stack.yml)."
    )


def _manager_addr(client: docker.DockerClient) -> str:
    try:
        return str(client.info()["Swarm"]["NodeAddr"]) or "MANAGER"
    except Exception:
        return "MANAGER"
