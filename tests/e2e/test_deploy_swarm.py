"""The core promise, end to end on a real swarm and a real Registry v2:
push → notification → durable event → deploy pinned by digest → converged."""

from __future__ import annotations

import pytest

from tests.support.lab import dockerhub_payload, running_images, service_image, wait_for

pytestmark = pytest.mark.e2e


def rule(repo: str, service: str, tag: str = "stage", **extra) -> dict:
    return {
        "name": f"r-{service}",
        "repo": repo,
        "tag": tag,
        "actions": [{"service": service, **extra}],
    }


def test_registry_push_deploys_the_pushed_digest(
    docker_client, registry, images, autodock, make_service, notify_port, unique
):
    repo, svc = f"e2e/app-{unique}", f"app_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    wait_for(lambda: running_images(docker_client, svc), what="first task running")
    server = autodock(
        {"rules": [rule(repo, svc)], "discovery": {"labels": False}}, port=notify_port
    )

    second = images.publish(repo, "stage")
    assert second != first
    deploy = server.wait_deploy_of(second, target=svc)

    expected = f"{registry.addr}/{repo}:stage@{second}"
    assert deploy["status"] == "succeeded", deploy
    assert deploy["source"] == "registry"
    assert deploy["digest"] == second  # taken from the event, not resolved again
    assert deploy["old_image"] == f"{registry.addr}/{repo}:stage@{first}"
    assert deploy["new_image"] == expected
    assert service_image(docker_client, svc) == expected
    assert running_images(docker_client, svc) == [expected]


def test_dockerhub_post_resolves_digest_and_keeps_the_spec(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"e2e/hub-{unique}", f"hub_{unique}"
    first = images.publish(repo, "stage")
    make_service(
        svc, f"{registry.addr}/{repo}:stage@{first}", env=["KEEP=me"], labels={"team": "a"}
    )
    server = autodock({"rules": [rule(repo, svc)], "discovery": {"labels": False}})
    second = images.publish(repo, "stage")

    reply = server.post("/autodock/v1/", dockerhub_payload(repo, "stage"))
    assert reply.status_code == 202, reply.text
    assert reply.json()["matched_rules"] == [f"r-{svc}"]
    (deploy,) = server.wait_final(1, target=svc)

    assert deploy["status"] == "succeeded", deploy
    assert deploy["new_image"] == f"{registry.addr}/{repo}:stage@{second}"
    spec = docker_client.api.inspect_service(svc)["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["KEEP=me"]
    assert spec["Labels"] == {"team": "a"}

    # The same push again is a no-op: the service already runs that digest.
    again = server.post("/autodock/v1/", dockerhub_payload(repo, "stage"))
    assert again.status_code == 202
    deploys = server.wait_final(2, target=svc)
    assert deploys[0]["status"] == "unchanged"


def test_labelled_service_deploys_without_a_rule(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"e2e/label-{unique}", f"label_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}", labels={"autodock.repo": repo})
    server = autodock({"rules": [], "discovery": {"labels": True, "refresh_seconds": 0.5}})
    wait_for(
        lambda: "1 labelled" in server.log() or "labelled service(s)" in server.log(),
        what="discovery",
    )
    second = images.publish(repo, "stage")

    other = server.post(
        "/hooks/generic", {"repo": repo, "tag": "dev-abc1234", "registry": registry.addr}
    )
    assert other.json()["status"] == "ignored"  # the service follows the tag it runs: stage
    reply = server.post("/hooks/generic", {"repo": repo, "tag": "stage", "registry": registry.addr})
    assert reply.json()["matched_rules"] == [f"label:{svc}"], reply.text
    (deploy,) = server.wait_final(1, target=svc)
    assert deploy["status"] == "succeeded", deploy
    assert service_image(docker_client, svc) == f"{registry.addr}/{repo}:stage@{second}"


def test_failing_tasks_mark_the_deploy_failed_with_the_reason(
    docker_client, registry, images, autodock, make_service, notify_port, unique
):
    repo, svc = f"e2e/fail-{unique}", f"fail_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    server = autodock(
        {"rules": [rule(repo, svc, timeout=60)], "discovery": {"labels": False}}, port=notify_port
    )
    bad = images.publish(repo, "stage", cmd=["/bin/sh", "-c", "echo boom >&2; exit 3"])
    deploy = server.wait_deploy_of(bad, target=svc)

    assert deploy["status"] == "failed", deploy
    assert "paused" in deploy["error"] or "failed" in deploy["error"]
    assert "exit code 3" in deploy["error"] or "non-zero exit (3)" in deploy["error"], deploy[
        "error"
    ]


def test_burst_of_pushes_coalesces_to_at_most_two_deploys(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"e2e/burst-{unique}", f"burst_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    server = autodock({"rules": [rule(repo, svc)], "discovery": {"labels": False}})
    digests = [images.publish(repo, "stage") for _ in range(8)]
    for digest in digests:
        body = {"repo": repo, "tag": "stage", "registry": registry.addr, "digest": digest}
        assert server.post("/hooks/generic", body).status_code == 202

    deploys = server.wait_final(8, target=svc, timeout=120)
    ran = [d for d in deploys if d["status"] != "superseded"]
    assert 1 <= len(ran) <= 2, [(d["id"], d["status"]) for d in deploys]
    assert all(d["status"] == "succeeded" for d in ran), ran
    assert max(ran, key=lambda d: d["id"])["digest"] == digests[-1]
    assert service_image(docker_client, svc) == f"{registry.addr}/{repo}:stage@{digests[-1]}"
