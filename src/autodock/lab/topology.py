"""Names, addresses and paths of the lab: one place, so `up`, `down` and the tests agree."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LabLayout", "Node"]

PREFIX = "adl"
SUBNET = "10.231.0"


@dataclass(frozen=True)
class Node:
    """One swarm node: a network namespace with its own dockerd and hostname."""

    name: str  # also the netns name and the node's hostname: adl-mgr, adl-w1, …
    ip: str
    role: str  # manager | worker
    run_dir: Path
    data_dir: Path

    @property
    def netns_path(self) -> str:
        return f"/var/run/netns/{self.name}"

    @property
    def exec_root(self) -> Path:
        return self.run_dir / self.name

    @property
    def socket(self) -> Path:
        return self.run_dir / f"{self.name}.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        return self.data_dir / self.name

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.dockerd.log"


@dataclass(frozen=True)
class LabLayout:
    """The lab's fixed shape; ``workers`` is the only knob."""

    workers: int = 1
    run_dir: Path = Path(os.environ.get("AUTODOCK_LAB_RUN", "/run/autodock-lab"))
    data_dir: Path = Path(os.environ.get("AUTODOCK_LAB_DATA", "/var/lib/autodock-lab"))

    hub_netns: str = f"{PREFIX}-hub"
    bridge: str = "br0"
    host_link: str = f"{PREFIX}-host"
    host_ip: str = f"{SUBNET}.254"
    prefix_len: int = 24
    registry_port: int = 5000

    @property
    def subnet(self) -> str:
        return f"{SUBNET}.0/{self.prefix_len}"

    @property
    def manager(self) -> Node:
        return Node(f"{PREFIX}-mgr", f"{SUBNET}.1", "manager", self.run_dir, self.data_dir)

    @property
    def worker_nodes(self) -> list[Node]:
        return [
            Node(f"{PREFIX}-w{i}", f"{SUBNET}.{i + 1}", "worker", self.run_dir, self.data_dir)
            for i in range(1, self.workers + 1)
        ]

    @property
    def nodes(self) -> list[Node]:
        return [self.manager, *self.worker_nodes]

    @property
    def registry(self) -> str:
        """host:port every node (and the host, through its veth) reaches the registry at."""
        return f"{self.manager.ip}:{self.registry_port}"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def registry_config(self) -> Path:
        return self.run_dir / "registry.yml"

    @property
    def registry_log(self) -> Path:
        return self.run_dir / "registry.log"

    @property
    def registry_data(self) -> Path:
        return self.data_dir / "registry"

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if name in (node.name, node.name.removeprefix(f"{PREFIX}-")):
                return node
        raise KeyError(name)
