"""A legacy config.json works unchanged, and acknowledged work survives kill -9."""

from __future__ import annotations

import json
import sqlite3
import sys
import time

import pytest

from tests.support.lab import dockerhub_payload, service_image, wait_for

pytestmark = pytest.mark.e2e

SLOW_RECORD = "import sys,time; time.sleep(0.2); open(sys.argv[1],'a').write(sys.argv[2]+'\\n')"
RECORD_ARGV = "import json,sys; open(sys.argv[1],'a').write(json.dumps(sys.argv[2:])+'\\n')"


def test_legacy_config_runs_the_argv_with_placeholders(autodock, tmp_path, unique):
    out = tmp_path / "argv.jsonl"
    legacy = {
        f"jincort/backend-{unique}": [
            sys.executable,
            "-c",
            RECORD_ARGV,
            str(out),
            "update",
            "${repository.repo_name}",
            "${push_data.tag}",
            "${push_data.pusher}",
            "${repository.name}",
            "${repository.namespace}",
            "${repository.owner}",
            "${push_data.pushed_at}",
        ]
    }
    server = autodock(json.dumps(legacy, indent=2))
    body = dockerhub_payload(f"jincort/backend-{unique}", "stage", pusher="ci-bot")
    reply = server.post("/autodock/v1", body)  # without the trailing slash, as some users have it
    assert reply.status_code == 202, reply.text
    (deploy,) = server.wait_final(1)
    assert deploy["status"] == "succeeded", deploy

    argv = json.loads(out.read_text())
    assert argv == [
        "update",
        f"jincort/backend-{unique}",
        "stage",
        "ci-bot",
        f"backend-{unique}",
        "jincort",
        "jincort",
        str(body["push_data"]["pushed_at"]),
    ]
    unknown = server.post("/autodock/v1/", dockerhub_payload("jincort/unknown", "stage"))
    assert unknown.status_code == 202 and unknown.json()["status"] == "ignored"


def test_kill9_loses_no_acknowledged_event(autodock, tmp_path, unique):
    """Acknowledged events to many targets; autodock is killed mid-burst; after a restart
    every event reaches a final state and no command ran twice."""
    out = tmp_path / "ran.jsonl"
    config = {
        "workers": 2,
        "discovery": {"labels": False},
        "rules": [
            {
                "name": "record",
                "repo": f"kill/{unique}-*",
                "tag": "*",
                "command": [
                    sys.executable,
                    "-c",
                    SLOW_RECORD,
                    str(out),
                    "${repository.repo_name}",
                ],
            }
        ],
    }
    server = autodock(config)
    acked = []
    for i in range(40):
        reply = server.post("/hooks/generic", {"repo": f"kill/{unique}-{i}", "tag": "stage"})
        assert reply.status_code == 202
        acked.append(reply.json()["id"])
    server.kill9()
    db = sqlite3.connect(server.db)
    pending = db.execute(
        "SELECT count(*) FROM deploys WHERE status IN ('queued','running')"
    ).fetchone()[0]
    assert pending > 0, "the kill came too late to prove anything"
    db.close()

    server.start()
    deploys = server.wait_final(40, timeout=120)
    assert sorted(d["event_id"] for d in deploys) == sorted(acked)
    lines = out.read_text().splitlines()
    assert len(lines) == len(set(lines)), "a command ran twice"
    succeeded = {d["repo"] for d in deploys if d["status"] == "succeeded"}
    interrupted = [d for d in deploys if d["status"] == "failed"]
    assert all("interrupted" in d["error"] for d in interrupted), interrupted
    assert succeeded <= set(lines)
    assert len(succeeded) + len(interrupted) == 40


def test_service_deploy_interrupted_by_kill9_is_finished_after_restart(
    docker_client, registry, images, autodock, make_service, unique
):
    repo, svc = f"e2e/restart-{unique}", f"restart_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    server = autodock(
        {
            "rules": [{"repo": repo, "tag": "stage", "services": [svc]}],
            "discovery": {"labels": False},
        }
    )
    second = images.publish(repo, "stage")
    body = {"repo": repo, "tag": "stage", "registry": registry.addr, "digest": second}
    assert server.post("/hooks/generic", body).status_code == 202
    wait_for(lambda: server.deploys(target=svc)[0]["status"] == "running", what="deploy running")
    time.sleep(0.5)
    server.kill9()
    server.start()
    deploy = server.wait_deploy_of(second, target=svc, timeout=90)
    assert deploy["status"] in ("succeeded", "unchanged"), deploy
    assert deploy["attempts"] == 2
    assert service_image(docker_client, svc) == f"{registry.addr}/{repo}:stage@{second}"
