"""Beyond the peers, on the real swarm: a failing smoke check rolls back; semver
policies hold major upgrades and downgrades."""

from __future__ import annotations

import httpx
import pytest
from docker.types import EndpointSpec

from tests.support.lab import free_port, service_image, wait_for

pytestmark = pytest.mark.e2e


def published(port: int) -> EndpointSpec:
    # Host-mode publishing: this lab has no IPVS routing mesh.
    return EndpointSpec(ports={port: (8000, "tcp", "host")})


def test_failing_smoke_check_rolls_back_to_the_previous_image(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc, port = f"e2e/smoke-{unique}", f"smoke_{unique}", free_port()
    good = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{good}", endpoint_spec=published(port))
    check = {
        "path": "/index.html",
        "port": 8000,
        "expect_body": "ok",
        "retries": 3,
        "interval": 0.5,
        "timeout": 2,
    }
    server = autodock(
        {
            "discovery": {"labels": False},
            "rules": [
                {"repo": repo, "tag": "stage", "actions": [{"service": svc, "check": check}]}
            ],
        }
    )

    # A version that starts fine but serves the wrong thing.
    broken = images.publish(repo, "stage", cmd=["/bin/httpd", "-f", "-p", "8000", "-h", "/tmp"])
    body = {"repo": repo, "tag": "stage", "registry": registry.addr, "digest": broken}
    assert server.post("/hooks/generic", body).status_code == 202
    deploy = server.wait_deploy_of(broken, target=svc, timeout=120)
    assert deploy["status"] == "rolled_back", deploy
    assert "smoke check failed" in deploy["error"] and "404" in deploy["error"]
    assert service_image(docker_client, svc) == f"{registry.addr}/{repo}:stage@{good}"

    # A good version passes the same check.
    fixed = images.publish(repo, "stage")
    body["digest"] = fixed
    assert server.post("/hooks/generic", body).status_code == 202
    deploy = server.wait_deploy_of(fixed, target=svc, timeout=120)
    assert deploy["status"] == "succeeded", deploy
    assert "→ 200" in deploy["output"]


def test_semver_policy_holds_major_upgrades_and_downgrades(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"e2e/semver-{unique}", f"semver_{unique}"
    digests = {tag: images.publish(repo, tag) for tag in ("v1.4.2", "v1.5.0", "v2.0.0", "v1.3.9")}
    make_service(svc, f"{registry.addr}/{repo}:v1.4.2@{digests['v1.4.2']}")
    server = autodock(
        {
            "discovery": {"labels": False},
            "api": {"token": "semver-token"},
            "rules": [
                {"repo": repo, "tag": "v*", "actions": [{"service": svc, "semver": "minor"}]}
            ],
        }
    )

    def push(tag: str) -> int:
        body = {"repo": repo, "tag": tag, "registry": registry.addr, "digest": digests[tag]}
        reply = server.post("/hooks/generic", body)
        assert reply.status_code == 202
        return reply.json()["deploys"][0]

    def settled(deploy_id: int) -> dict:
        def done():
            (d,) = [d for d in server.deploys(target=svc) if d["id"] == deploy_id]
            return d if d["status"] not in ("queued", "running") else None

        return wait_for(done, timeout=90, what=f"deploy {deploy_id}")

    assert settled(push("v1.5.0"))["status"] == "succeeded"
    down = settled(push("v1.3.9"))
    assert down["status"] == "ignored" and "downgrade" in down["error"], down

    # A major upgrade waits for a person, then rolls out once approved.
    major_id = push("v2.0.0")
    major = settled(major_id)
    assert major["status"] == "awaiting_approval" and "major upgrade" in major["error"], major
    assert service_image(docker_client, svc).startswith(f"{registry.addr}/{repo}:v1.5.0@")
    reply = httpx.post(
        f"{server.url}/api/v1/deploys/{major_id}/approve",
        json={"by": "ann"},
        headers={"Authorization": "Bearer semver-token"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    assert settled(major_id)["status"] in ("queued", "running", "succeeded")
    assert server.wait_deploy_of(digests["v2.0.0"], target=svc)["status"] == "succeeded"
    assert service_image(docker_client, svc).startswith(f"{registry.addr}/{repo}:v2.0.0@")
