"""Pure notification code: message content, routing, gating, signatures, redaction."""

from __future__ import annotations

import json
import time

import pytest

from autodock.config import parse_config_text
from autodock.exceptions import ConfigError
from autodock.models import DeployRecord, DeployStatus
from autodock.notify import messages
from autodock.notify.delivery import scrub
from autodock.notify.records import redact_url
from autodock.notify.webhook import sign, signed_headers, verify

OLD = "127.0.0.1:5000/team/app:stage@sha256:" + "a" * 64
NEW = "127.0.0.1:5000/team/app:stage@sha256:" + "b" * 64


def record(**kw) -> DeployRecord:
    base = dict(
        id=7,
        event_id=3,
        rule="stage-app",
        kind="service",
        target="stage_app",
        target_key="service:stage_app",
        action={},
        status=DeployStatus.SUCCEEDED,
        attempts=1,
        created_at=1000.0,
        repo="team/app",
        tag="stage",
        digest="sha256:" + "b" * 64,
        registry="127.0.0.1:5000",
        pusher="alice",
        source="registry",
        old_image=OLD,
        new_image=NEW,
        started_at=1000.0,
        finished_at=1012.5,
    )
    base.update(kw)
    return DeployRecord(**base)


def config(text: str):
    return parse_config_text(text)


CFG = """
public_url: https://autodock.example.com/
notifiers:
  slack:
    type: slack
    url: https://hooks.slack.com/services/T/B/secret
  hook:
    type: webhook
    url_env: HOOK_URL
    events: [started, succeeded, failed]
  quiet:
    type: webhook
    url: http://x/y
default_notify: [slack]
rules:
  - name: stage-app
    repo: team/app
    services: [stage_app]
    notify: [slack, hook]
  - name: other
    repo: team/other
    services: [stage_other]
"""


@pytest.mark.parametrize(
    ("status", "event"),
    [
        ("succeeded", "deploy.succeeded"),
        ("failed", "deploy.failed"),
        ("rolled_back", "deploy.rolled_back"),
        ("unchanged", None),
        ("superseded", None),
        ("queued", None),
    ],
)
def test_event_names(status, event):
    assert messages.event_name(status) == event


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        (OLD, ("stage", "sha256:" + "a" * 64)),
        ("team/app:v1", ("v1", None)),
        ("127.0.0.1:5000/team/app@sha256:ff", (None, "sha256:ff")),
        (None, (None, None)),
    ],
)
def test_image_parts(image, parts):
    assert messages.image_parts(image) == parts


def test_slack_success_message_says_what_a_person_needs():
    body = messages.slack_payload(record(), "deploy.succeeded", "https://autodock.example.com/")
    text = json.dumps(body, ensure_ascii=False)
    assert body["text"].startswith("✅ Deploy succeeded: stage_app")
    assert "aaaaaaaaaaaa → bbbbbbbbbbbb" in body["text"] and "12.5s" in body["text"]
    (att,) = body["attachments"]
    assert att["color"] == "#2eb67d"
    for needle in ("stage_app", "alice", "12.5s", "`stage` `aaaaaaaaaaaa`", "`bbbbbbbbbbbb`"):
        assert needle in text, needle
    assert "<https://autodock.example.com/deploys/7|open in autodock>" in text
    assert not any("Error" in json.dumps(b) for b in att["blocks"])


def test_slack_failure_message_has_error_and_bounded_command_output():
    output = "\n".join(f"line {i}" for i in range(500)) + "\nboom: exit 3"
    rec = record(
        status=DeployStatus.FAILED,
        kind="command",
        target="migrate",
        error="command failed: exit code 3\n" + "x" * 5000,
        output=output,
    )
    body = messages.slack_payload(rec, "deploy.failed")
    att = body["attachments"][0]
    assert att["color"] == "#e01e5a"
    texts = [b["text"]["text"] for b in att["blocks"] if b["type"] == "section" and "text" in b]
    error = next(t for t in texts if t.startswith("*Error*"))
    tail = next(t for t in texts if t.startswith("*Output"))
    assert "exit code 3" in error and len(error) < messages.ERROR_LIMIT + 50
    assert "boom: exit 3" in tail and "line 1\n" not in tail
    assert tail.count("\n") <= messages.OUTPUT_TAIL_LINES + 2
    assert all(len(t) <= 3000 for t in texts)  # Slack's section text limit
    assert "open in autodock" not in json.dumps(body)  # no public_url, no link


def test_webhook_payload_is_versioned_and_documented_shape():
    rec = record(status=DeployStatus.FAILED, error="task abc failed (exit code 3)")
    body = messages.webhook_payload(rec, "deploy.failed", "https://d.example")
    assert body["version"] == 1 and body["event"] == "deploy.failed"
    d = body["deploy"]
    assert d["id"] == 7 and d["target"] == "stage_app" and d["status"] == "failed"
    assert d["old"] == {"image": OLD, "tag": "stage", "digest": "sha256:" + "a" * 64}
    assert d["new"]["digest"] == "sha256:" + "b" * 64
    assert d["pusher"] == "alice" and d["duration"] == 12.5
    assert d["error"] == "task abc failed (exit code 3)" and d["output_tail"] is None
    assert d["url"] == "https://d.example/deploys/7"
    started = messages.webhook_payload(rec, "deploy.started")["deploy"]
    assert started["status"] == "running" and started["duration"] is None
    assert started["error"] is None


def test_hub_callback_aggregates_the_events_deploys():
    ok = record()
    same = record(id=8, target="stage_b", status=DeployStatus.UNCHANGED)
    bad = record(id=9, target="stage_c", status=DeployStatus.FAILED, error="paused\ntask x")
    crash = record(id=9, status=DeployStatus.FAILED, error="internal error: KeyError()")
    body = messages.hub_callback_payload([ok, same], "https://d", "autodock-stage")
    assert body == {
        "state": "success",
        "description": "deployed stage_app, stage_b",
        "context": "autodock-stage",
        "target_url": "https://d/deploys/7",
    }
    body = messages.hub_callback_payload([ok, bad])
    assert body["state"] == "failure" and "target_url" not in body
    assert body["description"] == "1 of 2 deploys failed: stage_c: paused"
    assert messages.hub_callback_payload([crash])["state"] == "error"
    long = record(status=DeployStatus.FAILED, error="e" * 1000)
    assert len(messages.hub_callback_payload([long])["description"]) <= 255


def test_routing_rule_notify_else_default():
    cfg = config(CFG)
    assert messages.routed_channels(cfg, "stage-app") == ["slack", "hook"]
    assert messages.routed_channels(cfg, "other") == ["slack"]
    assert messages.routed_channels(cfg, "label:svc") == ["slack"]


def test_builder_routes_filters_events_and_gates_hub_callback():
    cfg = config(CFG)
    build = messages.build_notifications(cfg)
    hub_url = "https://registry.hub.docker.com/u/team/app/hook/abc/"
    rec = record(callback_url=hub_url)
    running = record(id=8, status=DeployStatus.RUNNING, callback_url=hub_url)
    rows = build(rec, [rec, running])
    assert [(r.channel, r.event) for r in rows] == [
        ("slack", "deploy.succeeded"),
        ("hook", "deploy.succeeded"),
    ]
    assert all(r.deploy_id == 7 and r.order_key == f"7:{r.channel}" for r in rows)
    assert "secret" not in json.dumps([r.payload for r in rows])

    done = record(id=8, status=DeployStatus.FAILED, error="boom", callback_url=hub_url)
    rows = build(done, [rec, done])
    hub = [r for r in rows if r.kind == "dockerhub"]
    assert len(hub) == 1 and hub[0].target == hub_url and hub[0].payload["state"] == "failure"

    # unchanged says nothing to people, but still answers Docker Hub
    rows = build(record(status=DeployStatus.UNCHANGED, callback_url=hub_url), [])
    assert [r.kind for r in rows] == ["dockerhub"]

    started = messages.started_notifications(cfg, record(status=DeployStatus.RUNNING))
    assert [r.channel for r in started] == ["hook"]  # only 'hook' opted in to started
    assert messages.started_notifications(cfg, record(attempts=2)) == []


def test_dockerhub_notifier_can_disable_callbacks():
    cfg = config("notifiers:\n  hub:\n    type: dockerhub\n    enabled: false\n")
    rec = record(callback_url="https://hub/cb")
    assert messages.build_notifications(cfg)(rec, [rec]) == []
    assert messages.hub_channel(config("{}\n")) is not None


def test_config_rejects_unknown_and_incomplete_notifiers():
    with pytest.raises(ConfigError, match="unknown notifier"):
        config("default_notify: [nope]\n")
    with pytest.raises(ConfigError, match="unknown notifier"):
        config("rules:\n  - repo: a/b\n    services: [x]\n    notify: [nope]\n")
    with pytest.raises(ConfigError, match="token \\+ channel"):
        config("notifiers:\n  s:\n    type: slack\n    token_env: T\n")
    with pytest.raises(ConfigError, match="needs url"):
        config("notifiers:\n  w:\n    type: webhook\n")


def test_secrets_resolve_from_env_and_file(tmp_path, monkeypatch):
    path = tmp_path / "url"
    path.write_text("https://hooks.example/file-secret\n")
    monkeypatch.setenv("HOOK_URL", "https://hooks.example/env-secret")
    cfg = config(
        f"notifiers:\n  a:\n    type: webhook\n    url_env: HOOK_URL\n"
        f"  b:\n    type: webhook\n    url_file: {path}\n"
    )
    assert cfg.notifiers["a"].resolve_url() == "https://hooks.example/env-secret"
    assert cfg.notifiers["b"].resolve_url() == "https://hooks.example/file-secret"
    assert "T/B/secret" not in repr(config(CFG).notifiers["slack"])  # SecretStr


def test_signature_round_trip_and_tamper_detection():
    body = b'{"version":1}'
    now = time.time()
    headers = signed_headers("deploy.failed", "42", body, "k3y", now)
    ts, sig = headers["X-Autodock-Timestamp"], headers["X-Autodock-Signature"]
    assert sig.startswith("sha256=") and sig == sign("k3y", ts, body)
    assert verify("k3y", ts, body, sig)
    assert not verify("k3y", ts, body + b" ", sig)
    assert not verify("other", ts, body, sig)
    assert not verify("k3y", str(int(now) - 3600), body, sign("k3y", str(int(now) - 3600), body))
    assert "X-Autodock-Signature" not in signed_headers("e", "1", body, None)


def test_redaction():
    assert redact_url("https://hooks.slack.com/services/T/B/XYZ") == "https://hooks.slack.com/…"
    assert redact_url("http://127.0.0.1:8080/hook?token=1") == "http://127.0.0.1:8080/…"
    assert redact_url("not a url") == "<redacted>"
    assert scrub("failed for https://h/s3cr3t", ["https://h/s3cr3t"]) == "failed for <redacted>"
