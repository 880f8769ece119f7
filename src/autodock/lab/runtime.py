"""Bring the lab up, report on it, take it down.

``up`` is idempotent: each step checks what already exists and only adds what is
missing. Everything it creates (namespaces, links, pids) is recorded in a state file so
that ``down`` removes exactly that and nothing else on the machine.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

from . import images
from .netns import (
    LabError,
    alive,
    ip,
    link_exists,
    netns_exists,
    route_exists,
    spawn_in_netns,
    stop_pid,
)
from .topology import LabLayout, Node

__all__ = ["Lab", "LabStatus", "NodeStatus"]

Say = Callable[[str], None]
NODE_LABEL = "autodock.lab.node"


def _quiet(_: str) -> None:
    pass


@dataclass
class NodeStatus:
    name: str
    ip: str
    role: str
    engine: bool = False
    swarm: str = "-"
    node_id: str | None = None
    detail: str = ""


@dataclass
class LabStatus:
    nodes: list[NodeStatus] = field(default_factory=list)
    registry: bool = False
    host_route: bool = False

    @property
    def up(self) -> bool:
        return self.registry and all(n.engine and n.swarm == "active" for n in self.nodes)


class Lab:
    def __init__(self, layout: LabLayout | None = None, say: Say = _quiet):
        self.layout = layout or LabLayout()
        self.say = say

    # ------------------------------------------------------------------ state file

    def _state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.layout.state_file.read_text())
        except (OSError, ValueError):
            state = {}
        for key in ("netns", "links", "pids", "dirs"):
            state.setdefault(key, [] if key != "pids" else {})
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        self.layout.state_file.write_text(json.dumps(state, indent=2))

    def _remember(self, key: str, value: Any, name: str | None = None) -> None:
        state = self._state()
        if name is None:
            if value not in state[key]:
                state[key].append(value)
        else:
            state[key][name] = value
        self._save(state)

    # ------------------------------------------------------------------ clients

    def client(self, node: Node | str | None = None, timeout: int = 60) -> docker.DockerClient:
        if node is None:
            node = self.layout.manager
        elif isinstance(node, str):
            node = self.layout.node(node)
        return docker.DockerClient(base_url=node.docker_host, timeout=timeout)

    # ------------------------------------------------------------------ up

    @classmethod
    def recorded_workers(cls, layout: LabLayout | None = None) -> int:
        """How many workers the last `up` made (1 when nothing is recorded)."""
        return int(cls(layout)._state().get("workers", 1))

    def up(self) -> LabStatus:
        for path in (self.layout.run_dir, self.layout.data_dir):
            if not path.exists():
                path.mkdir(parents=True)
                self._remember("dirs", str(path))
        state = self._state()
        state["workers"] = max(int(state.get("workers", 0)), self.layout.workers)
        self._save(state)
        self._network()
        for node in self.layout.nodes:
            self._engine(node)
        self._registry()
        self._swarm()
        self._images()
        status = self.status()
        if not status.up:
            raise LabError(f"lab did not come up: {status}")
        self.say(
            f"up: {len(status.nodes)} nodes, registry {self.layout.registry}, "
            f"DOCKER_HOST={self.layout.manager.docker_host}"
        )
        return status

    def _network(self) -> None:
        lay = self.layout
        if not netns_exists(lay.hub_netns):
            self.say(f"creating hub namespace {lay.hub_netns} with bridge {lay.bridge}")
            ip("netns", "add", lay.hub_netns)
            self._remember("netns", lay.hub_netns)
        if not link_exists(lay.bridge, lay.hub_netns):
            ip("link", "add", lay.bridge, "type", "bridge", netns=lay.hub_netns)
        ip("link", "set", lay.bridge, "up", netns=lay.hub_netns)
        ip("link", "set", "lo", "up", netns=lay.hub_netns)
        for node in lay.nodes:
            if not netns_exists(node.name):
                self.say(f"creating namespace {node.name} ({node.ip})")
                ip("netns", "add", node.name)
                self._remember("netns", node.name)
            port = f"v-{node.name.removeprefix('adl-')}"
            if not link_exists(port, lay.hub_netns):
                ip(
                    "link", "add", port, "type", "veth", "peer", "name", "eth0",
                    "netns", node.name, netns=lay.hub_netns,
                )  # fmt: skip
            ip("link", "set", port, "master", lay.bridge, "up", netns=lay.hub_netns)
            ip("link", "set", "lo", "up", netns=node.name)
            cidr = f"{node.ip}/{lay.prefix_len}"
            if cidr not in ip("-o", "addr", "show", "dev", "eth0", netns=node.name):
                ip("addr", "add", cidr, "dev", "eth0", netns=node.name)
            ip("link", "set", "eth0", "up", netns=node.name)
        # The host gets an address on the lab subnet, unless someone else routes it.
        if not link_exists(lay.host_link):
            if route_exists(lay.subnet):
                self.say(f"{lay.subnet} is already routed on the host: reach nodes via nsenter")
                return
            self.say(f"linking the host to the lab: {lay.host_link} {lay.host_ip}")
            ip(
                "link", "add", lay.host_link, "type", "veth", "peer", "name", "v-host",
                "netns", lay.hub_netns,
            )  # fmt: skip
            self._remember("links", lay.host_link)
            ip("addr", "add", f"{lay.host_ip}/{lay.prefix_len}", "dev", lay.host_link)
        ip("link", "set", "v-host", "master", lay.bridge, "up", netns=lay.hub_netns)
        ip("link", "set", lay.host_link, "up")

    def _engine(self, node: Node) -> None:
        if self._engine_ok(node):
            return
        state = self._state()
        pid = state["pids"].get(node.name)
        if pid and alive(pid, str(node.exec_root)):
            self.say(f"waiting for the engine of {node.name} (pid {pid})")
        else:
            self.say(f"starting dockerd for {node.name}")
            node.exec_root.mkdir(parents=True, exist_ok=True)
            node.data_root.mkdir(parents=True, exist_ok=True)
            argv = [
                shutil.which("dockerd") or "dockerd",
                "--data-root", str(node.data_root),
                "--exec-root", str(node.exec_root),
                "--pidfile", str(node.exec_root / "dockerd.pid"),
                "-H", node.docker_host,
                "--insecure-registry", self.layout.registry,
                "--containerd-namespace", node.name,
                "--containerd-plugins-namespace", f"{node.name}-plugins",
            ]  # fmt: skip
            with node.log_path.open("ab") as log:
                proc = spawn_in_netns(argv, node.netns_path, log, hostname=node.name)
            self._remember("pids", proc.pid, node.name)
            pid = proc.pid
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self._engine_ok(node):
                return
            if not alive(pid, str(node.exec_root)):
                break
            time.sleep(0.5)
        tail = node.log_path.read_text(errors="replace").splitlines()[-15:]
        raise LabError(f"dockerd of {node.name} did not start:\n" + "\n".join(tail))

    def _engine_ok(self, node: Node) -> bool:
        if not node.socket.exists():
            return False
        try:
            with closing(self.client(node, timeout=5)) as client:
                return bool(client.ping())
        except Exception:
            return False

    def _registry_pid_alive(self) -> bool:
        pid = self._state()["pids"].get("registry")
        return bool(pid and alive(pid, str(self.layout.registry_config)))

    def _registry(self) -> None:
        lay = self.layout
        if self._registry_pid_alive():
            return
        self.say(f"starting registry on {lay.registry} (in {lay.manager.name})")
        lay.registry_data.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {
                "filesystem": {"rootdirectory": str(lay.registry_data)},
                "delete": {"enabled": True},
            },
            "http": {"addr": lay.registry},
        }
        lay.registry_config.write_text(yaml.safe_dump(config))
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            raise LabError("docker-registry not found: apt-get install docker-registry")
        with lay.registry_log.open("ab") as log:
            proc = spawn_in_netns(
                [binary, "serve", str(lay.registry_config)], lay.manager.netns_path, log
            )
        self._remember("pids", proc.pid, "registry")

    def _swarm(self) -> None:
        mgr = self.layout.manager
        with closing(self.client(mgr)) as client:
            if client.info()["Swarm"]["LocalNodeState"] != "active":
                self.say(f"initialising swarm on {mgr.name} (advertise {mgr.ip})")
                client.swarm.init(advertise_addr=mgr.ip, listen_addr=f"{mgr.ip}:2377")
            client.swarm.reload()
            token = client.swarm.attrs["JoinTokens"]["Worker"]
            for worker in self.layout.worker_nodes:
                with closing(self.client(worker)) as wclient:
                    if wclient.info()["Swarm"]["LocalNodeState"] != "active":
                        self.say(f"joining {worker.name} ({worker.ip}) as a worker")
                        wclient.swarm.join(
                            remote_addrs=[f"{mgr.ip}:2377"],
                            join_token=token,
                            advertise_addr=worker.ip,
                            listen_addr=f"{worker.ip}:2377",
                        )
            self._label_nodes(client)

    def _label_nodes(self, client: docker.DockerClient) -> None:
        """Label nodes by lab name so stacks can pin services without knowing node IDs."""
        deadline = time.monotonic() + 60
        wanted = {n.name for n in self.layout.nodes}
        while True:
            nodes = {n.attrs["Description"]["Hostname"]: n for n in client.nodes.list()}
            ready = {
                h for h, n in nodes.items() if h in wanted and n.attrs["Status"]["State"] == "ready"
            }
            if ready == wanted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for hostname, node in nodes.items():
            if hostname not in wanted:
                continue
            spec = node.attrs["Spec"]
            labels = spec.get("Labels") or {}
            if labels.get(NODE_LABEL) != hostname.removeprefix("adl-"):
                labels[NODE_LABEL] = hostname.removeprefix("adl-")
                node.update({**spec, "Labels": labels})

    def _images(self) -> None:
        builds = {
            images.WHOAMI_IMAGE: images.whoami_rootfs,
            images.NGINX_IMAGE: images.nginx_rootfs,
        }
        cmds = {
            images.WHOAMI_IMAGE: ['CMD ["/usr/local/bin/whoami-httpd"]'],
            images.NGINX_IMAGE: ['CMD ["/usr/sbin/nginx", "-g", "daemon off;"]'],
        }
        with closing(self.client()) as client:
            for name, build in builds.items():
                ref = f"{self.layout.registry}/{name}"
                if self._in_registry(client, ref):
                    continue
                self.say(f"building {ref} from this machine's binaries")
                client.api.import_image_from_data(
                    build(),
                    repository=ref.rpartition(":")[0],
                    tag=ref.rpartition(":")[2],
                    changes=["ENV PATH=/usr/local/bin:/usr/sbin:/bin", *cmds[name]],
                )
                for line in client.images.push(ref, stream=True, decode=True):
                    if "error" in line:
                        raise LabError(f"push {ref}: {line['error']}")

    def _in_registry(self, client: docker.DockerClient, ref: str) -> bool:
        try:
            client.images.get_registry_data(ref)
            return True
        except docker.errors.APIError:
            return False

    # ------------------------------------------------------------------ status

    def status(self) -> LabStatus:
        out = LabStatus(host_route=link_exists(self.layout.host_link))
        for node in self.layout.nodes:
            ns = NodeStatus(node.name, node.ip, node.role)
            out.nodes.append(ns)
            if not netns_exists(node.name):
                ns.detail = "no namespace"
                continue
            if not self._engine_ok(node):
                ns.detail = "engine down"
                continue
            ns.engine = True
            with closing(self.client(node, timeout=10)) as client:
                swarm = client.info()["Swarm"]
                ns.swarm = swarm["LocalNodeState"]
                ns.node_id = swarm.get("NodeID") or None
        out.registry = netns_exists(self.layout.manager.name) and self._registry_pid_alive()
        return out

    # ------------------------------------------------------------------ down

    def down(self, purge: bool = True) -> None:
        state = self._state()
        lay = self.layout
        known = {n.name: n for n in lay.nodes}
        # Workers named in the state file may exceed today's --workers: stop them all.
        for name in sorted(state["pids"], key=lambda n: n == lay.manager.name):
            if name == "registry":
                continue
            node = known.get(name) or Node(name, "", "worker", lay.run_dir, lay.data_dir)
            pid = state["pids"][name]
            if alive(pid, str(node.exec_root)):
                self.say(f"stopping dockerd of {name} (pid {pid})")
                self._leave(node)
                stop_pid(pid, str(node.exec_root))
            if purge:
                self._purge(node)
        pid = state["pids"].get("registry")
        if pid and alive(pid, str(lay.registry_config)):
            self.say(f"stopping registry (pid {pid})")
            stop_pid(pid, str(lay.registry_config))
        if purge and lay.registry_data.exists():
            shutil.rmtree(lay.registry_data, ignore_errors=True)
        for link in state["links"]:
            if link_exists(link):
                self.say(f"removing link {link}")
                ip("link", "del", link)
        for ns in reversed(state["netns"]):
            if netns_exists(ns):
                self.say(f"removing namespace {ns}")
                ip("netns", "del", ns)
        for path in (lay.state_file, lay.registry_config):
            path.unlink(missing_ok=True)
        for d in reversed(state["dirs"]):
            if Path(d).exists() and purge:
                shutil.rmtree(d, ignore_errors=True)
        self.say("down")

    def _leave(self, node: Node) -> None:
        try:
            with closing(self.client(node, timeout=15)) as client:
                client.swarm.leave(force=True)
        except Exception:  # noqa: S110 - the engine is going away either way
            pass

    def _purge(self, node: Node) -> None:
        for path in (node.exec_root, node.data_root):
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
        for path in (node.socket, node.log_path):
            path.unlink(missing_ok=True)
