"""The real 2-node lab (manager + worker, each a netns with its own dockerd), brought up
once per session and taken down at the end unless it was already up before."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import docker
import pytest

from autodock.lab.netns import link_exists
from autodock.lab.runtime import Lab
from autodock.lab.service_add import http_get
from autodock.lab.topology import LabLayout
from autodock.proxy.sync import ProxySync
from tests.support.lab import wait_for

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "examples/stage/stack.yml"
STACK_NAME = "stage"


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("the 2-node lab needs root and dockerd")
    lab = Lab(LabLayout(workers=1), say=lambda line: print(f"[lab] {line}", file=sys.stderr))
    was_up = lab.status().up
    try:
        lab.up()
        yield lab
    finally:
        if not was_up:
            lab.down()


@pytest.fixture(scope="session")
def mgr(lab: Lab) -> Iterator[docker.DockerClient]:
    with closing(lab.client(timeout=120)) as client:
        yield client


def docker_env(lab: Lab) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": lab.layout.manager.docker_host}


@pytest.fixture(scope="session")
def stage(lab: Lab, mgr: docker.DockerClient) -> Iterator[docker.DockerClient]:
    """examples/stage/stack.yml deployed as documented, routes synced from its labels."""
    if shutil.which("docker") is None:
        pytest.skip("docker CLI (docker stack deploy) not installed")
    subprocess.run(
        ["docker", "stack", "deploy", "-c", str(STACK), STACK_NAME],
        check=True,
        env=docker_env(lab),
        cwd=STACK.parent,
        capture_output=True,
    )
    try:
        wait_for(lambda: all_running(mgr), timeout=90, what="stage services running")
        ProxySync(mgr, proxy_service=f"{STACK_NAME}_nginx-proxy").sync_once()
        for node in lab.layout.nodes:
            wait_for(
                lambda ip=node.ip: routed_to(ip, "wallets.stage.local") == "stage_wallets",
                timeout=60,
                what=f"proxy on {node.ip} routing",
            )
        yield mgr
    finally:
        subprocess.run(
            ["docker", "stack", "rm", STACK_NAME], env=docker_env(lab), capture_output=True
        )
        wait_for(
            lambda: not mgr.services.list(filters={"label": "com.docker.stack.namespace"}),
            timeout=60,
            what="stack removed",
        )


def all_running(client: docker.DockerClient) -> bool:
    services = client.services.list(filters={"label": f"com.docker.stack.namespace={STACK_NAME}"})
    if len(services) < 11:  # the seed's 10 services + the proxy
        return False
    for svc in services:
        tasks = svc.tasks(filters={"desired-state": "running"})
        if not tasks or any(t["Status"]["State"] != "running" for t in tasks):
            return False
    return True


def get(ip: str, host: str | None, path: str = "/") -> tuple[int, str, str | None]:
    """GET http://IP/PATH with a Host header: through the host's veth into the lab, or,
    when the host has no route into the lab, from inside the manager's namespace."""
    if link_exists(LabLayout().host_link):
        return http_get(ip, 80, host, path)
    script = (
        "import json,sys;from autodock.lab.service_add import http_get;"
        "print(json.dumps(http_get(*json.loads(sys.argv[1]))))"
    )
    out = subprocess.run(
        ["nsenter", f"--net={LabLayout().manager.netns_path}", sys.executable, "-c", script,
         json.dumps([ip, 80, host, path])],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    ).stdout  # fmt: skip
    status, body, header = json.loads(out)
    return status, body, header


def routed_to(ip: str, host: str | None, path: str = "/") -> str | None:
    try:
        _, _, header = get(ip, host, path)
    except (OSError, subprocess.CalledProcessError):
        return None
    return header
