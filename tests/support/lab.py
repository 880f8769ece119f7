"""Real infrastructure for tests: the Docker engine in swarm mode, a Registry v2 that
notifies autodock, images built without pulling, and autodock servers as processes."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "tests" / "payloads"  # real samples, copied from shared/payloads
BASE_IMAGE = "lab/busybox:1"
TEST_AUTH = ("test", "s3cret-pass")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def ensure_lab() -> docker.DockerClient:
    """Run the project's own lab script (idempotent) and return an engine client."""
    subprocess.run(["bash", str(ROOT / "scripts/lab-up.sh")], check=True)
    return docker.from_env(timeout=120)


@dataclass
class Registry:
    """A Registry v2 of the test session, notifying ``notify_port``."""

    addr: str
    notify_port: int
    proc: subprocess.Popen[bytes]
    state: Path

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_registry(state: Path, notify_port: int) -> Registry:
    port = free_port()
    addr = f"127.0.0.1:{port}"
    state.mkdir(parents=True, exist_ok=True)
    cfg = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(state / "data")}},
        "http": {"addr": addr},
        "notifications": {
            "endpoints": [
                {
                    "name": "autodock",
                    "url": f"http://127.0.0.1:{notify_port}/hooks/registry",
                    "headers": {"Authorization": [basic_header(*TEST_AUTH)]},
                    "timeout": "2s",
                    "threshold": 3,
                    "backoff": "1s",
                }
            ]
        },
    }
    (state / "registry.yml").write_text(yaml.safe_dump(cfg))
    log = (state / "registry.log").open("wb")
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(state / "registry.yml")], stdout=log, stderr=log
    )
    wait_for(lambda: _up(f"http://{addr}/v2/"), what="registry")
    return Registry(addr, notify_port, proc, state)


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


class Images:
    """Build distinct images from the busybox base and push them to the test registry."""

    def __init__(self, client: docker.DockerClient, registry: str):
        self.client = client
        self.registry = registry

    def build(
        self, repo: str, tag: str, *, variant: str | None = None, cmd: list[str] | None = None
    ) -> str:
        ref = f"{self.registry}/{repo}:{tag}"
        lines = [f"FROM {BASE_IMAGE}", f"LABEL autodock.test.variant={variant or uuid.uuid4().hex}"]
        if cmd:
            lines.append(f"CMD {json.dumps(cmd)}")
        self.client.images.build(fileobj=io.BytesIO("\n".join(lines).encode()), tag=ref, rm=True)
        return ref

    def push(self, repo: str, tag: str) -> str:
        """Push and return the manifest digest the registry reports."""
        digest = None
        for line in self.client.images.push(
            f"{self.registry}/{repo}", tag=tag, stream=True, decode=True
        ):
            if "error" in line:
                raise RuntimeError(line["error"])
            digest = (line.get("aux") or {}).get("Digest", digest)
        assert digest, "push reported no digest"
        return digest

    def publish(self, repo: str, tag: str, **kw: Any) -> str:
        self.build(repo, tag, **kw)
        return self.push(repo, tag)


@dataclass
class AutodockServer:
    port: int
    workdir: Path
    config: dict[str, Any] | str  # a dict is written as YAML; a str is a legacy config.json
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.workdir / "data" / "autodock.db"

    @property
    def log_path(self) -> Path:
        return self.workdir / "autodock.log"

    def start(self) -> AutodockServer:
        argv = [sys.executable, "-m", "autodock.cli", "serve", "--log-level", "DEBUG"]
        if isinstance(self.config, str):
            path = self.workdir / "config.json"
            path.write_text(self.config)
            argv += ["--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.workdir / "data")]
            argv += ["--http-auth-user", TEST_AUTH[0]]
            env = {"AUTODOCK_HTTP_AUTH_PASS": TEST_AUTH[1]}
        else:
            cfg = dict(self.config)
            cfg.setdefault("listen", f"127.0.0.1:{self.port}")
            cfg.setdefault("data_dir", str(self.workdir / "data"))
            cfg.setdefault("auth", {"username": TEST_AUTH[0], "password": TEST_AUTH[1]})
            path = self.workdir / "autodock.yml"
            path.write_text(yaml.safe_dump(cfg))
            env = {}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*argv, "--config", str(path)],
            stdout=log,
            stderr=log,
            env={**os.environ, **env, **self.env},
            start_new_session=True,
        )
        wait_for(self._healthy, timeout=30, what=f"autodock on {self.port} (log {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"autodock exited with {self.proc.returncode}:\n{self.log()}")
        return _up(f"{self.url}/healthz")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def post(
        self, path: str, body: Any, *, auth: tuple[str, str] | None = TEST_AUTH, **kw: Any
    ) -> httpx.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(f"{self.url}{path}", content=data, auth=auth, timeout=10, **kw)

    def deploys(self, **params: Any) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/deploys", params={"limit": 500, **params}, timeout=10)
        r.raise_for_status()
        return list(r.json()["deploys"])

    def wait_final(
        self, count: int = 1, timeout: float = 90, **params: Any
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` deploys (matching params) exist and all are final."""

        def done():
            items = self.deploys(**params)
            if len(items) >= count and all(d["status"] not in ("queued", "running") for d in items):
                return items
            return None

        return wait_for(done, timeout=timeout, interval=0.5, what=f"{count} final deploys {params}")

    def wait_deploy_of(self, digest: str, timeout: float = 90, **params: Any) -> dict[str, Any]:
        """Wait for the final deploy of ``digest`` (registries may also redeliver older
        pushes made while no server listened; those show up as other deploys)."""

        def done():
            for d in self.deploys(**params):
                if d["digest"] == digest and d["status"] not in ("queued", "running"):
                    return d
            return None

        return wait_for(done, timeout=timeout, interval=0.5, what=f"deploy of {digest[:19]}")


def dockerhub_payload(
    repo: str, tag: str, pusher: str = "ci-bot", callback: str | None = None
) -> dict[str, Any]:
    namespace, _, name = repo.rpartition("/")
    body = json.loads((PAYLOADS / "dockerhub-push.json").read_text())
    body["push_data"].update({"tag": tag, "pusher": pusher, "pushed_at": int(time.time())})
    body["repository"].update(
        {"repo_name": repo, "name": name, "namespace": namespace, "owner": namespace}
    )
    body["callback_url"] = (
        # Loopback, never Docker Hub: servers under test really send the callback.
        callback or f"http://127.0.0.1:9/u/{repo}/hook/{uuid.uuid4().hex}/"
    )
    return body


def create_service(client: docker.DockerClient, name: str, image: str, **kw: Any) -> Any:
    """A service that updates fast: 1s monitor, 1s stop grace, no restart storms."""
    from docker.types import EndpointSpec, RestartPolicy, UpdateConfig

    svc = client.services.create(
        image,
        name=name,
        labels=kw.pop("labels", None) or {},
        update_config=UpdateConfig(
            parallelism=1,
            delay=0,
            monitor=1_000_000_000,
            failure_action=kw.pop("failure_action", "pause"),
            order="stop-first",
        ),
        restart_policy=RestartPolicy(
            condition="on-failure", delay=500_000_000, max_attempts=kw.pop("max_attempts", 3)
        ),
        stop_grace_period=1_000_000_000,
        endpoint_spec=kw.pop("endpoint_spec", EndpointSpec()),
        **kw,
    )
    return svc


def service_image(client: docker.DockerClient, name: str) -> str:
    return client.api.inspect_service(name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def running_images(client: docker.DockerClient, name: str) -> list[str]:
    tasks = client.api.tasks(filters={"service": name, "desired-state": "running"})
    return [t["Spec"]["ContainerSpec"]["Image"] for t in tasks if t["Status"]["State"] == "running"]
