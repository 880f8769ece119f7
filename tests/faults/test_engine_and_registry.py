"""The Docker engine stops mid-deploy; the registry is down when a digest is resolved."""

from __future__ import annotations

import time

import pytest

from tests.support.lab import (
    create_service,
    dockerhub_payload,
    free_port,
    running_images,
    service_image,
    wait_for,
)

pytestmark = pytest.mark.e2e


def test_dockerd_stopped_during_a_deploy(engine, registry, images, autodock, unique):
    """The deploy is retried with backoff while the engine is down, finishes once it is
    back, and the service is updated exactly once."""
    repo, svc = f"faults/engine-{unique}", f"engine_{unique}"
    first = images.publish(repo, "stage")
    second = images.publish(repo, "stage")
    old_ref = f"{registry.addr}/{repo}:stage@{first}"
    new_ref = f"{registry.addr}/{repo}:stage@{second}"
    client = engine.client()
    create_service(client, svc, old_ref, command=["sleep", "3600"])
    wait_for(lambda: running_images(client, svc) == [old_ref], timeout=60, what="first task")
    # A long monitor period keeps the update "updating" for seconds: time to stop dockerd.
    client.api.update_service(
        client.api.inspect_service(svc)["ID"],
        client.api.inspect_service(svc)["Version"]["Index"],
        update_config={"Parallelism": 1, "Monitor": 6_000_000_000, "Order": "stop-first"},
        fetch_current_spec=True,
    )
    version_before = client.api.inspect_service(svc)["Version"]["Index"]
    client.close()

    server = autodock(
        {
            "docker_host": engine.url,
            "max_attempts": 10,
            "retry_backoff": 0.5,
            "deploy_timeout": 90,
            "discovery": {"labels": False},
            "rules": [{"repo": repo, "tag": "stage", "services": [svc]}],
        }
    )
    body = {"repo": repo, "tag": "stage", "registry": registry.addr, "digest": second}
    assert server.post("/hooks/generic", body).status_code == 202

    def updating():
        (d,) = server.deploys(target=svc)
        assert d["status"] in ("queued", "running"), d
        return d["status"] == "running" and "tasks updated" in (d["progress"] or "")

    wait_for(updating, timeout=60, interval=0.1, what="the update under way")
    engine.stop()
    wait_for(
        lambda: server.deploys(target=svc)[0]["attempts"] >= 3,
        timeout=30,
        what="retries while the engine is down",
    )
    (during,) = server.deploys(target=svc)
    assert during["status"] in ("queued", "running")
    # Unreachable socket, or a stopping engine that already left the swarm (503).
    assert "Docker engine" in (during["error"] or "") or during["status"] == "running"
    time.sleep(1)
    engine.start()

    (deploy,) = server.wait_final(1, timeout=120, target=svc)
    assert deploy["status"] == "succeeded", deploy
    assert deploy["new_image"] == new_ref
    assert deploy["attempts"] >= 3
    client = engine.client()
    wait_for(lambda: running_images(client, svc) == [new_ref], timeout=60, what="new task")
    spec = client.api.inspect_service(svc)
    assert service_image(client, svc) == new_ref
    # One update: the previous spec is the old image (a second update would make it new_ref).
    assert spec["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Image"] == old_ref
    assert spec["Version"]["Index"] > version_before
    assert "retry 2/10" in server.log()  # backoff retries were logged
    client.api.remove_service(svc)
    client.close()


def test_registry_down_while_resolving_a_digest(
    docker_client, registry, images, autodock, make_service, unique
):
    """A Docker Hub-shaped push carries no digest; resolving it against a registry that
    is down is retried, then fails with a reason a person can act on."""
    repo, svc = f"faults/hub-{unique}", f"hubdown_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    server = autodock(
        {
            "max_attempts": 3,
            "retry_backoff": 0.2,
            "discovery": {"labels": False},
            "rules": [
                {
                    "repo": repo,
                    "tag": "stage",
                    "actions": [{"service": svc, "image": f"{dead}/{repo}"}],
                }
            ],
        }
    )
    reply = server.post("/autodock/v1/", dockerhub_payload(repo, "stage"))
    assert reply.status_code == 202, reply.text
    (deploy,) = server.wait_final(1, timeout=60, target=svc)
    assert deploy["status"] == "failed"
    assert deploy["attempts"] == 3
    assert f"cannot resolve digest of {dead}/{repo}:stage" in deploy["error"]
    assert "gave up after 3 attempts" in deploy["error"]
    assert service_image(docker_client, svc) == f"{registry.addr}/{repo}:stage@{first}"
