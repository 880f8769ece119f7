"""A throwaway Docker engine of a test's own, in swarm mode, that the test may stop and
start (the shared host engine is never touched): its own data root, exec root, pid
file and socket, its own bridge, no iptables, vfs storage.

Not ``--bridge=none``: an engine started that way deletes the host's ``docker0``, which
every other engine's containers on the default network need."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import docker

from tests.support.lab import free_port, wait_for


class ThrowawayEngine:
    def __init__(self) -> None:
        # Short paths: containerd's sockets live under the exec root (108-byte limit).
        self.root = Path(f"/tmp/ad-eng-{uuid.uuid4().hex[:8]}")
        self.sock = self.root / "docker.sock"
        self.url = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.swarm_port = free_port()
        suffix = uuid.uuid4().hex[:8]
        self.bridge = f"adb{suffix}"  # at most 15 characters, as Linux wants
        self.bridge_cidr = f"172.30.{int(suffix[:2], 16)}.1/24"

    def argv(self) -> list[str]:
        return [
            "dockerd",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host={self.url}",
            f"--bridge={self.bridge}",
            "--iptables=false",
            "--ip-masq=false",
            "--storage-driver=vfs",
        ]

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=60)

    def _ask(self, question) -> bool:
        try:
            c = self.client()
        except Exception:
            return False
        try:
            question(c)
            return True
        except Exception:
            return False
        finally:
            c.close()

    def _ping(self) -> bool:
        return self._ask(lambda c: c.ping())

    def _swarm_ready(self) -> bool:
        return self._ask(lambda c: c.api.services())

    def _ensure_bridge(self) -> None:
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True).returncode:
            subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
            subprocess.run(["ip", "addr", "add", self.bridge_cidr, "dev", self.bridge], check=True)
            subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)

    def start(self) -> ThrowawayEngine:
        self.root.mkdir(parents=True, exist_ok=True)
        self._ensure_bridge()
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            self.argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        wait_for(self._ping, timeout=60, what=f"throwaway dockerd ({self.root}/dockerd.log)")
        c = self.client()
        try:
            if c.info()["Swarm"]["LocalNodeState"] != "active":
                addr = f"127.0.0.1:{self.swarm_port}"
                c.swarm.init(advertise_addr=addr, listen_addr=addr)
        finally:
            c.close()
        wait_for(self._swarm_ready, timeout=60, what="throwaway swarm manager")
        return self

    def stop(self) -> None:
        """A clean stop (SIGTERM), as an operator or a package upgrade would do it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def destroy(self) -> None:
        self.stop()
        subprocess.run(["umount", "-R", str(self.root)], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dockerd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
