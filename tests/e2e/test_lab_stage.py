"""The stage environment as code, on a real 2-node swarm (see docs/lab.md)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid

import docker
import pytest
from click.testing import CliRunner

from autodock.lab.cli import lab as lab_cli
from autodock.lab.images import WHOAMI_IMAGE
from autodock.lab.service_add import service
from autodock.proxy.sync import ProxySync
from tests.support.lab import wait_for

from .conftest import STACK_NAME, get, routed_to

pytestmark = pytest.mark.e2e

MANAGER, WORKER = "10.231.0.1", "10.231.0.2"
# The seed's placement (shared/seed/ci-cd-beta-stage.md).
ON_MANAGER = {"companies", "wallets", "redis"}
ON_WORKER = {
    "frontend-wallets", "frontend-messenger", "frontend-company", "frontend-contracts",
    "wallets_sender", "auth", "verify",
}  # fmt: skip


def node_names(client: docker.DockerClient) -> dict[str, str]:
    return {n.id: n.attrs["Description"]["Hostname"] for n in client.nodes.list()}


def test_lab_is_two_real_nodes(lab, mgr):
    nodes = {n.attrs["Description"]["Hostname"]: n.attrs for n in mgr.nodes.list()}
    assert set(nodes) == {"adl-mgr", "adl-w1"}
    assert nodes["adl-mgr"]["Spec"]["Role"] == "manager"
    assert nodes["adl-w1"]["Spec"]["Role"] == "worker"
    assert nodes["adl-mgr"]["Status"]["Addr"] == MANAGER
    assert nodes["adl-w1"]["Status"]["Addr"] == WORKER
    assert all(n["Status"]["State"] == "ready" for n in nodes.values())
    result = CliRunner().invoke(lab_cli, ["status"])
    assert result.exit_code == 0, result.output
    assert "adl-w1" in result.output and "registry" in result.output


def test_up_is_idempotent(lab, mgr):
    before = {n.id for n in mgr.nodes.list()}
    started = time.monotonic()
    lab.up()
    assert time.monotonic() - started < 10
    assert {n.id for n in mgr.nodes.list()} == before


@pytest.mark.parametrize(
    ("node_ip", "host", "path", "service", "other_node"),
    [
        (MANAGER, "auth.stage.local", "/", "stage_auth", "adl-w1"),
        (MANAGER, "stage.local", "/", "stage_frontend-wallets", "adl-w1"),
        (MANAGER, "api.stage.local", "/verify/", "stage_verify", "adl-w1"),
        (WORKER, "wallets.stage.local", "/", "stage_wallets", "adl-mgr"),
        (WORKER, "companies.stage.local", "/", "stage_companies", "adl-mgr"),
    ],
)
def test_port_80_on_each_node_reaches_the_other_node(
    stage, node_ip, host, path, service, other_node
):
    status, body, header = get(node_ip, host, path)
    assert status == 200, body
    assert header == service
    assert body.startswith(f"service={service} node={other_node} ")


def test_unrouted_host_gets_the_proxy_404(stage):
    status, body, header = get(WORKER, "nobody.stage.local")
    assert status == 404 and header is None
    assert "no route" in body


def test_placement_follows_the_seed(stage):
    names = node_names(stage)
    seen = {}
    for svc in stage.services.list(filters={"label": f"com.docker.stack.namespace={STACK_NAME}"}):
        short = svc.name.removeprefix(f"{STACK_NAME}_")
        seen[short] = sorted(
            names[t["NodeID"]] for t in svc.tasks(filters={"desired-state": "running"})
        )
    for short in ON_MANAGER:
        assert seen[short] == ["adl-mgr"], short
    for short in ON_WORKER:
        assert seen[short] == ["adl-w1"], short
    assert seen["nginx-proxy"] == ["adl-mgr", "adl-w1"]


def test_service_add_makes_a_new_service_reachable(lab, stage, monkeypatch):
    name = f"onboard-{uuid.uuid4().hex[:6]}"
    host = f"{name}.stage.local"
    monkeypatch.setenv("DOCKER_HOST", lab.layout.manager.docker_host)
    secret = stage.secrets.create(name=f"{name}-token", data=b"s3cret")
    argv = ["add", name, "--image", f"{lab.layout.registry}/{WHOAMI_IMAGE}"]
    argv += ["--node", "worker", "--host", host, "--secret", f"{name}-token"]
    argv += ["-e", "SERVICE_NAME={{.Service.Name}}", "-e", "NODE_NAME={{.Node.Hostname}}"]
    try:
        result = CliRunner().invoke(service, [*argv, "--timeout", "90"])
        assert result.exit_code == 0, result.output
        assert "/autodock/v1/" in result.output and "/hooks/registry" in result.output
        labels = stage.services.get(name).attrs["Spec"]["Labels"]
        assert labels["autodock.repo"] == "lab/whoami"
        assert labels["autodock.proxy.host"] == host
        spec = stage.services.get(name).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert [s["SecretName"] for s in spec["Secrets"]] == [f"{name}-token"]
        tasks = stage.services.get(name).tasks(filters={"desired-state": "running"})
        assert [node_names(stage)[t["NodeID"]] for t in tasks] == ["adl-w1"]
        # The manager's port 80 reaches it on the worker, with no further step.
        status, body, _ = get(MANAGER, host)
        assert status == 200
        assert body.startswith(f"service={name} node=adl-w1 ")
    finally:
        remove_service(stage, name)
        wait_for(lambda: _removed(secret), timeout=30, what="secret removed")


def _removed(secret) -> bool:
    try:
        secret.remove()
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError:
        return False  # still in use while the service goes away
    return True


def test_proxy_sync_follows_services_coming_and_going(stage):
    """ProxySync.run() as `serve` runs it: routes appear and disappear on their own."""
    name = f"sync-{uuid.uuid4().hex[:6]}"
    host = f"{name}.stage.local"
    network = next(n for n in stage.networks.list(names=[f"{STACK_NAME}_stage"]))
    loop = asyncio.new_event_loop()
    syncer = ProxySync(stage, proxy_service=f"{STACK_NAME}_nginx-proxy", interval=0.5)
    task = loop.create_task(syncer.run())

    def run_loop() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        loop.close()

    runner = threading.Thread(target=run_loop, daemon=True)
    runner.start()
    try:
        stage.services.create(
            f"{stage_registry(stage)}/{WHOAMI_IMAGE}",
            name=name,
            env=["SERVICE_NAME={{.Service.Name}}", "NODE_NAME={{.Node.Hostname}}"],
            networks=[network.id],
            labels={"autodock.proxy.host": host},
            constraints=["node.role==manager"],
            endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
        )
        t0 = time.monotonic()
        wait_for(lambda: routed_to(WORKER, host) == name, timeout=90, what="route added")
        print(f"route added after {time.monotonic() - t0:.1f}s")
        wait_for(lambda: routed_to(MANAGER, host) == name, timeout=60, what="route on manager")
        stage.services.get(name).remove()
        wait_for(
            lambda: routed_to(WORKER, host) is None and routed_to(MANAGER, host) is None,
            timeout=90,
            what="route removed",
        )
        print(f"route removed after {time.monotonic() - t0:.1f}s")
    finally:
        loop.call_soon_threadsafe(task.cancel)
        runner.join(10)
        remove_service(stage, name)
    managed = [c.name for c in stage.configs.list(filters={"label": "autodock.proxy.managed"})]
    assert len(managed) <= 2  # current + the one the previous spec (rollback) names


def remove_service(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.services.get(name).remove()


def stage_registry(client: docker.DockerClient) -> str:
    image = client.services.get(f"{STACK_NAME}_nginx-proxy").attrs["Spec"]["TaskTemplate"]
    return str(image["ContainerSpec"]["Image"]).split("/", 1)[0]
