"""Intake in-process: auth, validation, durability before the 202 (no engine needed)."""

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from autodock.config import parse_config_text
from autodock.intake.auth import BasicAuthenticator
from autodock.server import build_context, create_app

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
AUTH = ("hook", "pa:ss wörd")


@pytest.fixture
def client(tmp_path):
    cfg = parse_config_text(
        f"""
data_dir: {tmp_path}
auth: {{username: hook, password: "pa:ss wörd"}}
discovery: {{labels: false}}
max_body_bytes: 4096
rules:
  - {{name: auth, repo: jincort/backend-auth, tag: stage, services: [stage_auth]}}
"""
    )
    ctx = build_context(cfg)
    with TestClient(create_app(ctx, run_worker=False)) as c:
        c.ctx = ctx
        yield c


def hub():
    return json.loads((PAYLOADS / "dockerhub-push.json").read_text())


def test_accepts_and_stores_before_replying(client):
    r = client.post("/autodock/v1/", json=hub(), auth=AUTH)
    assert r.status_code == 202
    body = r.json()
    assert body["matched_rules"] == ["auth"] and body["status"] == "accepted"
    (deploy,) = client.ctx.store.list_deploys(__import__("autodock.store").store.DeployFilter())
    assert deploy.id == body["deploys"][0] and deploy.target == "stage_auth"


@pytest.mark.parametrize("path", ["/autodock/v1/", "/autodock/v1", "/hooks/registry"])
@pytest.mark.parametrize(
    "auth", [None, ("hook", "wrong"), ("other", "pa:ss wörd"), ("hook", "pa:ss wörd ")]
)
def test_wrong_credentials_are_refused(client, path, auth):
    r = client.post(path, json=hub(), auth=auth)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Basic realm="autodock"')
    assert client.ctx.store.counts()["events"] == 0


def test_bad_input_is_400_and_stores_nothing(client):
    for body in (b"{", b"[]", json.dumps({"push_data": {"tag": "a;b"}}).encode()):
        r = client.post("/autodock/v1/", content=body, auth=AUTH)
        assert r.status_code == 400 and r.json()["error"]
    bad = hub()
    bad["push_data"]["tag"] = "x y"
    assert client.post("/autodock/v1/", json=bad, auth=AUTH).status_code == 400
    assert client.ctx.store.counts()["events"] == 0


def test_body_limit_is_413(client):
    big = hub()
    big["repository"]["description"] = "x" * 5000
    assert client.post("/autodock/v1/", json=big, auth=AUTH).status_code == 413
    assert client.ctx.store.counts()["events"] == 0


def test_unmatched_push_is_ignored_but_acknowledged(client):
    other = hub()
    other["repository"]["repo_name"] = "jincort/unknown"
    r = client.post("/autodock/v1/", json=other, auth=AUTH)
    assert r.status_code == 202 and r.json()["status"] == "ignored"
    assert client.ctx.store.list_events()[0]["status"] == "ignored"


def test_registry_envelope_and_redelivery(client):
    env = json.loads((PAYLOADS / "registry-v2-push.json").read_text())
    env["events"][0]["target"]["repository"] = "jincort/backend-auth"
    first = client.post("/hooks/registry", json=env, auth=AUTH).json()
    again = client.post("/hooks/registry", json=env, auth=AUTH).json()
    assert first["status"] == "accepted" and again["status"] == "duplicate"
    assert again["id"] == first["id"]
    assert client.ctx.store.counts()["events"] == 1


def test_unknown_source_is_404(client):
    assert client.post("/hooks/nope", json={}, auth=AUTH).status_code == 404


def test_authenticator_parsing():
    a = BasicAuthenticator("u", "p")
    assert a.check("Basic dTpw")
    assert not a.check("Basic dTpx")
    assert not a.check("Bearer dTpw")
    assert not a.check("Basic !!!")
    assert not a.check("Basic dQ==")  # no colon
    assert not a.check(None)
