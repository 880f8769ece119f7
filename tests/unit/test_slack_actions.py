"""Slack buttons: Approve/Reject a waiting deploy, Revert a finished one; only requests
signed with the app's signing secret, and only fresh ones, are obeyed."""

import json
import time
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from autodock.config import parse_config_text
from autodock.models import DeployResult, DeployStatus
from autodock.notify.slack_actions import slack_signature
from autodock.server import build_context, create_app
from autodock.store import DeployFilter

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def client(tmp_path):
    cfg = parse_config_text(f"""
data_dir: {tmp_path}
auth: none
discovery: {{labels: false}}
slack_app: {{signing_secret: {SECRET}}}
notifiers:
  stage: {{type: slack, url: "http://127.0.0.1:9/hook"}}
default_notify: [stage]
rules:
  - {{name: prod, repo: org/app, tag: "*", approval: true, services: [web]}}
""")
    ctx = build_context(cfg)
    with TestClient(create_app(ctx, run_worker=False)) as c:
        c.ctx = ctx
        yield c


def press(client, action_id: str, deploy_id: int, *, secret=SECRET, ts=None, user="ann"):
    payload = {
        "type": "block_actions",
        "user": {"id": "U1", "username": user},
        "actions": [{"action_id": action_id, "value": str(deploy_id)}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(ts if ts is not None else time.time()))
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(secret, ts, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return client.post("/hooks/slack/actions", content=body, headers=headers)


def push(client, tag: str) -> int:
    reply = client.post("/hooks/generic", json={"repo": "org/app", "tag": tag})
    assert reply.status_code == 202, reply.text
    return reply.json()["deploys"][0]


def test_waiting_deploy_is_announced_with_buttons_and_approved_from_slack(client):
    deploy_id = push(client, "v1")
    store = client.ctx.store
    assert store.get_deploy(deploy_id).status is DeployStatus.AWAITING_APPROVAL
    (note,) = store.list_notifications()
    assert note.event == "deploy.awaiting_approval"
    actions = [
        b for b in json.loads(note.payload)["attachments"][0]["blocks"] if b["type"] == "actions"
    ]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        "autodock_approve",
        "autodock_reject",
    ]

    assert press(client, "autodock_approve", deploy_id, secret="wrong").status_code == 401
    assert press(client, "autodock_approve", deploy_id, ts=time.time() - 600).status_code == 401
    assert store.get_deploy(deploy_id).status is DeployStatus.AWAITING_APPROVAL

    reply = press(client, "autodock_approve", deploy_id)
    assert reply.status_code == 200 and "approved by slack:ann" in reply.json()["text"]
    record = store.get_deploy(deploy_id)
    assert record.status is DeployStatus.QUEUED and record.progress == "approved by slack:ann"
    again = press(client, "autodock_reject", deploy_id)
    assert "not awaiting approval" in again.json()["text"]


def test_revert_button_queues_the_previous_image(client):
    deploy_id = push(client, "v2")
    store = client.ctx.store
    assert store.decide(deploy_id, True, "test", time.time())
    job = store.claim("w", 30, time.time())
    old = "reg:5000/org/app:v1@sha256:" + "a" * 64
    store.finish(
        job.id,
        "w",
        DeployResult(
            DeployStatus.SUCCEEDED,
            old_image=old,
            new_image="reg:5000/org/app:v2@sha256:" + "b" * 64,
        ),
        time.time(),
    )
    reply = press(client, "autodock_revert", deploy_id, user="bob")
    assert reply.status_code == 200 and "reverting web" in reply.json()["text"]
    newest = store.list_deploys(DeployFilter(limit=1))[0]
    assert newest.rule == "manual:revert" and newest.action["pin"] == old
    assert newest.status is DeployStatus.QUEUED  # a revert is never held for approval


def test_unconfigured_app_is_404(tmp_path):
    cfg = parse_config_text(f"data_dir: {tmp_path}\nauth: none\ndiscovery: {{labels: false}}\n")
    with TestClient(create_app(build_context(cfg), run_worker=False)) as c:
        assert c.post("/hooks/slack/actions", content=b"payload=x").status_code == 404
