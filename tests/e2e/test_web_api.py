"""The HTTP API against a real server process, a real swarm and a real registry:
services, rollback, pause/resume, retry, token checks, the live stream and /metrics."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest
from docker.types import ServiceMode

from tests.support.lab import ROOT, running_images, service_image, wait_for

pytestmark = pytest.mark.e2e

TOKEN = "api-t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config(repo: str, service: str, **api) -> dict:
    return {
        "rules": [{"name": f"r-{service}", "repo": repo, "tag": "stage", "services": [service]}],
        "discovery": {"labels": False},
        "api": {"token": TOKEN, **api},
    }


def push(server, registry, repo: str, digest: str) -> dict:
    body = {"repo": repo, "tag": "stage", "registry": registry.addr, "digest": digest}
    reply = server.post("/hooks/generic", body)
    assert reply.status_code == 202, reply.text
    return reply.json()


def api(server, method: str, path: str, token: str | None = TOKEN, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30, **kw)


def cli(server, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTODOCK_API_TOKEN": token, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "autodock.cli", *args, "--url", server.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_services_listing_shows_digest_replicas_rules_and_stream(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"web/list-{unique}", f"list_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}", mode=ServiceMode("replicated", 2))
    wait_for(lambda: running_images(docker_client, svc), timeout=90, what="first task running")
    server = autodock(config(repo, svc))

    def listed():
        items = {s["name"]: s for s in api(server, "GET", "/api/v1/services").json()["services"]}
        item = items.get(svc)
        return item if item and item["replicas"]["running"] == 2 else None

    item = wait_for(listed, timeout=60, what="2 running replicas listed")
    assert item["image_name"] == f"{registry.addr}/{repo}"
    assert item["tag"] == "stage"
    assert item["digest"] == first
    assert item["replicas"] == {"running": 2, "desired": 2}
    assert sum(n["tasks"] for n in item["nodes"]) == 2 and item["nodes"][0]["node"]
    assert item["rules"] == [f"r-{svc}"] and item["managed"]
    assert item["last_deploy"] is None and item["previous_image"] is None
    one = api(server, "GET", f"/api/v1/services/{svc}").json()
    assert one["digest"] == first
    assert api(server, "GET", "/api/v1/services/no-such-service").status_code == 404

    # The live stream announces an event recorded while a client listens.
    with httpx.stream("GET", f"{server.url}/api/v1/stream", timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        reply = api(server, "POST", "/api/v1/trigger", json={"repo": repo, "tag": "nomatch"})
        assert reply.status_code == 202 and reply.json()["status"] == "ignored"
        lines = stream.iter_lines()
        seen = wait_for(lambda: next(lines) == "event: event", timeout=10, interval=0)
        assert seen
        assert f'"repo": "{repo}"' in next(lines)

    status = cli(server, "status")
    assert status.returncode == 0, status.stderr
    assert svc in status.stdout and first.split(":")[1][:12] in status.stdout
    assert "2/2" in status.stdout


def test_action_endpoints_refuse_without_the_token(autodock, unique):
    server = autodock(config(f"web/auth-{unique}", f"auth_{unique}"))
    actions = [
        ("POST", "/api/v1/trigger", {"repo": "a/b", "tag": "x"}),
        ("POST", f"/api/v1/services/auth_{unique}/rollback", None),
        ("POST", f"/api/v1/services/auth_{unique}/pause", None),
        ("POST", f"/api/v1/services/auth_{unique}/resume", None),
        ("POST", f"/api/v1/rules/r-auth_{unique}/pause", None),
        ("POST", "/api/v1/deploys/1/retry", None),
    ]
    for method, path, body in actions:
        for token in (None, "wrong-token", TOKEN[:-1]):
            reply = api(server, method, path, token=token, json=body)
            assert reply.status_code == 401, (path, token, reply.text)
            assert reply.headers["www-authenticate"] == "Bearer"
        basic = httpx.post(f"{server.url}{path}", auth=("test", "s3cret-pass"), json=body)
        assert basic.status_code == 401, path
    # With the token: accepted (or a domain answer, never an auth refusal).
    body = {"repo": "a/b", "tag": "x"}
    assert api(server, "POST", "/api/v1/trigger", json=body).status_code == 202
    assert api(server, "POST", "/api/v1/deploys/999/retry").status_code == 404
    assert api(server, "POST", "/api/v1/rules/nope/pause").status_code == 404
    assert api(server, "POST", f"/api/v1/rules/r-auth_{unique}/pause").json()["paused"]
    assert api(server, "POST", f"/api/v1/rules/r-auth_{unique}/resume").json()["was_paused"]
    # Reads are open by default; the CLI reports a missing token clearly.
    assert api(server, "GET", "/api/v1/deploys", token=None).status_code == 200
    refused = cli(server, "retry", "1", token="bad")
    assert refused.returncode == 1 and "401" in refused.stderr

    guarded = autodock({**config("a/b", "x"), "api": {"token": TOKEN, "read": "token"}})
    for path in ("/api/v1/deploys", "/api/v1/events", "/api/v1/services", "/api/v1/pauses"):
        assert api(guarded, "GET", path, token=None).status_code == 401, path
        assert api(guarded, "GET", path).status_code == 200, path
    assert api(guarded, "GET", "/healthz", token=None).status_code == 200
    assert httpx.get(f"{guarded.url}/api/v1/stream?token=nope").status_code == 401

    unset = autodock({"rules": [], "discovery": {"labels": False}})
    assert api(unset, "POST", "/api/v1/trigger", json=body).status_code == 403


def test_rollback_returns_the_service_to_its_previous_image(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"web/rb-{unique}", f"rb_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    wait_for(lambda: running_images(docker_client, svc), timeout=90, what="first task running")
    server = autodock(config(repo, svc))
    assert api(server, "POST", f"/api/v1/services/{svc}/rollback").status_code == 409  # no previous

    second = images.publish(repo, "stage")
    push(server, registry, repo, second)
    assert server.wait_deploy_of(second, target=svc)["status"] == "succeeded"
    assert service_image(docker_client, svc).endswith(second)

    reply = api(server, "POST", f"/api/v1/services/{svc}/rollback")
    assert reply.status_code == 202, reply.text
    body = reply.json()
    assert body["to"] == f"{registry.addr}/{repo}:stage@{first}"
    deploy = wait_for(
        lambda: (d := api(server, "GET", f"/api/v1/deploys/{body['deploy']}").json())["status"]
        not in ("queued", "running")
        and d,
        timeout=90,
        what="rollback finished",
    )
    assert deploy["status"] == "succeeded", deploy
    assert deploy["rule"] == "manual:rollback" and deploy["target"] == svc
    assert deploy["old_image"].endswith(second) and deploy["new_image"].endswith(first)
    assert deploy["digest"] == first
    expected = f"{registry.addr}/{repo}:stage@{first}"
    assert service_image(docker_client, svc) == expected
    assert running_images(docker_client, svc) == [expected]
    assert api(server, "POST", "/api/v1/services/no_such_svc/rollback").status_code == 404


def test_pause_holds_pushes_and_resume_deploys_the_latest(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"web/pause-{unique}", f"pause_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    wait_for(lambda: running_images(docker_client, svc), timeout=90, what="first task running")
    server = autodock(config(repo, svc))

    paused = cli(server, "pause", svc, "--reason", "maintenance")
    assert paused.returncode == 0, paused.stderr
    pauses = api(server, "GET", "/api/v1/pauses", token=None).json()["pauses"]
    assert [(p["key"], p["reason"]) for p in pauses] == [(f"service:{svc}", "maintenance")]

    second, third = images.publish(repo, "stage"), images.publish(repo, "stage")
    assert push(server, registry, repo, second)["status"] == "accepted"
    assert push(server, registry, repo, third)["status"] == "accepted"
    deploys = server.deploys(target=svc)
    assert [(d["digest"], d["status"], d["held"]) for d in deploys] == [
        (third, "queued", True),
        (second, "superseded", False),
    ]
    listed = api(server, "GET", f"/api/v1/services/{svc}").json()
    assert listed["paused"] and listed["paused_by"] == [f"service:{svc}"]
    assert 'autodock_queue_depth{status="held"} 1.0' in httpx.get(f"{server.url}/metrics").text
    # Held, not deployed: the worker leaves it alone.
    with pytest.raises(AssertionError):
        wait_for(lambda: server.deploys(target=svc)[0]["status"] != "queued", timeout=3)
    assert service_image(docker_client, svc).endswith(first)

    resumed = cli(server, "resume", svc)
    assert resumed.returncode == 0, resumed.stderr
    deploy = server.wait_deploy_of(third, target=svc)
    assert deploy["status"] == "succeeded", deploy
    assert service_image(docker_client, svc) == f"{registry.addr}/{repo}:stage@{third}"
    assert api(server, "GET", "/api/v1/pauses").json()["pauses"] == []


def test_retry_reruns_a_failed_deploy_and_metrics_expose_the_series(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"web/retry-{unique}", f"retry_{unique}"
    first = images.publish(repo, "stage")
    server = autodock(config(repo, svc))
    second = images.publish(repo, "stage")
    push(server, registry, repo, second)
    (failed,) = server.wait_final(1, target=svc)
    assert failed["status"] == "failed" and "not found" in failed["error"]
    refused = api(server, "POST", f"/api/v1/deploys/{failed['id']}/retry", token=None)
    assert refused.status_code == 401

    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")  # the missing service appears

    wait_for(lambda: running_images(docker_client, svc), timeout=90, what="first task running")
    retried = cli(server, "retry", str(failed["id"]))
    assert retried.returncode == 0, retried.stderr
    new_id = int(retried.stdout.split()[1].rstrip(":"))
    assert new_id > failed["id"]
    deploy = wait_for(
        lambda: (d := api(server, "GET", f"/api/v1/deploys/{new_id}").json())["status"]
        not in ("queued", "running")
        and d,
        timeout=90,
        what="retried deploy finished",
    )
    assert deploy["status"] == "succeeded" and deploy["digest"] == second, deploy
    assert deploy["event_id"] == failed["event_id"] and deploy["rule"] == f"r-{svc}"
    assert service_image(docker_client, svc) == f"{registry.addr}/{repo}:stage@{second}"
    again = api(server, "POST", f"/api/v1/deploys/{deploy['id']}/retry")
    assert again.status_code == 409  # only failed deploys retry

    # The worker counts a deploy just after recording it: give the counter a moment.
    done = 'autodock_deploys_total{kind="service",status="succeeded"} 1.0'

    def scraped():
        text = httpx.get(f"{server.url}/metrics").text
        return text if done in text else None

    text = wait_for(scraped, what="the deploy counted")
    for series in (
        'autodock_events_received_total{result="accepted",source="generic"} 1.0',
        'autodock_deploys_total{kind="service",status="failed"} 1.0',
        'autodock_deploys_total{kind="service",status="succeeded"} 1.0',
        'autodock_deploy_duration_seconds_bucket{kind="service",le="+Inf"} 2.0',
        'autodock_deploys_by_status{status="failed"} 1.0',
        'autodock_deploys_by_status{status="succeeded"} 1.0',
        'autodock_queue_depth{status="queued"} 0.0',
        'autodock_queue_depth{status="running"} 0.0',
        "autodock_outbox_depth 0.0",
        "autodock_outbox_oldest_age_seconds 0.0",
        f'autodock_last_successful_deploy_timestamp_seconds{{target="{svc}"}}',
    ):
        assert series in text, series
    # Every series the sample Grafana dashboard queries is exported.
    dashboard = (ROOT / "examples/grafana-dashboard.json").read_text()
    for name in set(re.findall(r"autodock_[a-z_]+", dashboard)):
        assert f"# HELP {name.removesuffix('_bucket')} " in text, name
