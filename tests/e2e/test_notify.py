"""Notifications end to end: a real autodock process, a fake Slack/webhook receiver
speaking Slack's response shapes, and (for content) a real failing swarm deploy."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import yaml
from click.testing import CliRunner

from autodock.cli import LAZY_GROUPS, AutodockGroup, main
from autodock.notify.webhook import verify
from tests.support.fake_slack import FakeSlack
from tests.support.lab import dockerhub_payload, free_port, wait_for

pytestmark = pytest.mark.e2e

SLACK_PATH = "/services/T0001/B0001/sl4ck-s3cret-path"
HMAC_SECRET = "hmac-s3cret-value"
FAST = {"backoff": 0.2, "max_backoff": 1.0, "timeout": 2.0}


@pytest.fixture
def fake():
    server = FakeSlack(free_port()).start()
    yield server
    server.stop()


def command_rule(repo: str, argv: list[str], notify: list[str] | None = None, **kw) -> dict:
    rule = {"name": f"r-{repo}", "repo": repo, "tag": "stage", "actions": [{"command": argv}]}
    if notify is not None:
        rule["notify"] = notify
    return {**rule, **kw}


def notifications(server, **params) -> list[dict]:
    r = httpx.get(f"{server.url}/api/v1/notifications", params={"limit": 500, **params})
    r.raise_for_status()
    return list(r.json()["notifications"])


def bodies(fake: FakeSlack, path: str) -> list[dict]:
    return [r.json for r in fake.delivered(path)]


def test_failing_swarm_deploy_is_announced_with_its_reason(
    docker_client, registry, images, autodock, make_service, notify_port, unique, fake, tmp_path
):
    repo, svc = f"e2e/nfail-{unique}", f"nfail_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    secret_file = tmp_path / "hmac"
    secret_file.write_text(HMAC_SECRET + "\n")
    config = {
        "public_url": "https://autodock.example.com",
        "notifiers": {
            "stagestatus": {"type": "slack", "url_env": "SLACK_HOOK"},
            "audit": {
                "type": "webhook",
                "url": f"{fake.url}/hook/audit",
                "secret_file": str(secret_file),
                "events": ["started", "succeeded", "failed"],
            },
        },
        "default_notify": ["stagestatus"],
        "rules": [
            {
                "name": f"r-{svc}",
                "repo": repo,
                "tag": "stage",
                "actions": [{"service": svc, "timeout": 60}],
                "notify": ["stagestatus", "audit"],
            }
        ],
        "discovery": {"labels": False},
        "outbox": FAST,
    }
    server = autodock(config, port=notify_port, env={"SLACK_HOOK": fake.url + SLACK_PATH})
    bad = images.publish(repo, "stage", cmd=["/bin/sh", "-c", "exit 3"])
    deploy = server.wait_deploy_of(bad, target=svc)
    assert deploy["status"] == "failed", deploy

    slack = wait_for(lambda: bodies(fake, SLACK_PATH), what="slack message")

    # (the registry may also redeliver the first push: that deploy is "unchanged")
    def mine():
        got = [r for r in fake.delivered("/hook/audit") if r.json["deploy"]["id"] == deploy["id"]]
        return len(got) >= 2 and got

    hooks = wait_for(mine, what="started + failed webhooks")
    # Slack: what a person needs to know, in blocks coloured by result.
    (message,) = [m for m in slack if svc in m["text"]]
    att = message["attachments"][0]
    text = json.dumps(message, ensure_ascii=False)
    assert message["text"].startswith(f"❌ Deploy failed: {svc}")
    assert att["color"] == "#e01e5a"
    assert f"`{first.split(':')[1][:12]}`" in text  # old short digest
    assert f"`{bad.split(':')[1][:12]}`" in text  # new short digest
    assert "exit code 3" in text, text
    assert f"https://autodock.example.com/deploys/{deploy['id']}" in text

    # Webhook: versioned payload, started before failed, signature verifiable.
    events = [r.json["event"] for r in hooks]
    assert events == ["deploy.started", "deploy.failed"]
    for r in fake.delivered("/hook/audit"):
        assert verify(
            HMAC_SECRET,
            r.headers["X-Autodock-Timestamp"],
            r.body,
            r.headers["X-Autodock-Signature"],
        )
    failed = hooks[1].json
    assert failed["version"] == 1
    assert failed["deploy"]["target"] == svc and failed["deploy"]["status"] == "failed"
    assert failed["deploy"]["new"]["digest"] == bad
    assert failed["deploy"]["old"]["digest"] == first
    assert "exit code 3" in failed["deploy"]["error"]

    # Secrets stay out of the log and the API.
    api = json.dumps(notifications(server), ensure_ascii=False)
    log = server.log()
    assert "autodock.notify" in log or "notified" in log
    for secret in ("sl4ck-s3cret-path", HMAC_SECRET, "/hook/audit"):
        assert secret not in log, secret
        assert secret not in api, secret
    assert fake.url + "/…" in api  # endpoints shown as scheme+host only


def test_retries_honour_retry_after_and_keep_order_per_deploy(autodock, unique, fake):
    repo = f"n/order-{unique}"
    fake.fail("/hook/order", 429, "slow down", {"Retry-After": "2"})
    fake.fail("/hook/order", 503, "unavailable")
    config = {
        "notifiers": {
            "order": {
                "type": "webhook",
                "url": f"{fake.url}/hook/order",
                "events": ["started", "succeeded"],
            }
        },
        "rules": [command_rule(repo, ["/bin/sh", "-c", "echo hi"], ["order"])],
        "discovery": {"labels": False},
        "outbox": FAST,
    }
    server = autodock(config)
    assert server.post("/hooks/generic", {"repo": repo, "tag": "stage"}).status_code == 202
    (deploy,) = server.wait_final(1)
    assert deploy["status"] == "succeeded"  # the endpoint's trouble never held the deploy
    wait_for(lambda: len(fake.delivered("/hook/order")) == 2, timeout=30, what="2 delivered")

    seen = [(r.status, r.json["event"], r.headers["X-Autodock-Delivery"]) for r in fake.requests()]
    assert [(s, e) for s, e, _ in seen] == [
        (429, "deploy.started"),
        (503, "deploy.started"),
        (200, "deploy.started"),
        (200, "deploy.succeeded"),  # held back until started was through
    ]
    assert len({d for _, e, d in seen if e == "deploy.started"}) == 1  # stable delivery id
    reqs = fake.requests()
    assert reqs[1].at - reqs[0].at >= 1.9, "Retry-After: 2 was not honoured"
    rows = notifications(server, deploy_id=deploy["id"])
    assert {(n["event"], n["status"]) for n in rows} == {
        ("deploy.started", "sent"),
        ("deploy.succeeded", "sent"),
    }
    assert max(n["attempts"] for n in rows) == 3


def test_chat_postmessage_dead_letters_and_metrics(autodock, unique, fake):
    repo = f"n/dead-{unique}"
    ratelimited = json.dumps({"ok": False, "error": "ratelimited"})
    fake.fail("/api/chat.postMessage", 429, ratelimited, {"Retry-After": "1"})
    fake.fail("/hook/down", 500, "internal", times=1000)
    config = {
        "notifiers": {
            "bot": {
                "type": "slack",
                "token_env": "SLACK_BOT_TOKEN",
                "channel": "#stagestatus",
                "api_url": f"{fake.url}/api",
            },
            "wrongchan": {
                "type": "slack",
                "token_env": "SLACK_BOT_TOKEN",
                "channel": "#nope",
                "api_url": f"{fake.url}/api",
            },
            "down": {"type": "webhook", "url": f"{fake.url}/hook/down"},
        },
        "default_notify": ["bot", "wrongchan", "down"],
        "rules": [command_rule(repo, ["/bin/sh", "-c", "exit 0"])],
        "discovery": {"labels": False},
        "outbox": {**FAST, "max_age": 3.0},
    }
    server = autodock(config, env={"SLACK_BOT_TOKEN": fake.token})
    assert server.post("/hooks/generic", {"repo": repo, "tag": "stage"}).status_code == 202
    server.wait_final(1)

    wait_for(lambda: len(notifications(server, status="dead")) == 2, timeout=20, what="2 dead")
    wait_for(lambda: fake.delivered("/api/chat.postMessage"), what="bot message")
    ok = fake.delivered("/api/chat.postMessage")[0]
    assert ok.headers["Authorization"] == f"Bearer {fake.token}"
    assert ok.json["channel"] == "#stagestatus" and ok.json["attachments"][0]["blocks"]

    rows = {n["channel"]: n for n in notifications(server)}
    assert rows["bot"]["status"] == "sent"
    assert rows["wrongchan"]["status"] == "dead"
    # Both channels post to chat.postMessage at once; whichever came first met the one 429
    # and was retried once: three attempts in all, never more.
    assert rows["bot"]["attempts"] + rows["wrongchan"]["attempts"] == 3, rows
    assert rows["wrongchan"]["last_error"] == "chat.postMessage: channel_not_found"
    assert rows["down"]["status"] == "dead" and rows["down"]["attempts"] >= 3
    assert rows["down"]["last_error"].startswith("gave up: HTTP 500")
    assert rows["down"]["endpoint"] == fake.url + "/…"

    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'autodock_notifications_total{channel="down",result="dead"} 1.0' in metrics
    assert 'autodock_notifications_total{channel="bot",result="sent"} 1.0' in metrics
    wait_for(
        lambda: 'autodock_notifications_queued{status="dead"} 2.0'
        in httpx.get(f"{server.url}/metrics").text,
        what="dead gauge",
    )
    assert fake.token not in server.log() and fake.token not in json.dumps(rows)


def test_kill9_loses_no_queued_notification(autodock, unique):
    port = free_port()
    down = FakeSlack(port)  # not started: the endpoint is down
    repo = f"n/kill-{unique}"
    config = {
        "notifiers": {
            "hook": {
                "type": "webhook",
                "url": f"http://127.0.0.1:{port}/hook/kill",
                "events": ["started", "succeeded"],
            }
        },
        "default_notify": ["hook"],
        "rules": [command_rule(f"{repo}-*", ["/bin/sh", "-c", "exit 0"])],
        "discovery": {"labels": False},
        "outbox": FAST,
    }
    server = autodock(config)
    for i in range(3):
        reply = server.post("/hooks/generic", {"repo": f"{repo}-{i}", "tag": "stage"})
        assert reply.status_code == 202
    deploys = server.wait_final(3)
    assert all(d["status"] == "succeeded" for d in deploys)

    def first_attempts_failed():
        rows = notifications(server)
        started = [n for n in rows if n["event"] == "deploy.started"]
        return len(rows) == 6 and all(n["attempts"] >= 1 for n in started) and rows

    rows = wait_for(first_attempts_failed, what="failed first attempts")
    assert {n["status"] for n in rows} == {"pending"}
    # "succeeded" waits behind its deploy's undelivered "started": never sent out of order
    assert all(n["attempts"] == 0 for n in rows if n["event"] == "deploy.succeeded")

    server.kill9()
    down.start()
    try:
        server.start()
        wait_for(lambda: len(down.delivered("/hook/kill")) >= 6, timeout=30, what="6 delivered")
        time.sleep(0.5)
        got = [(r.json["deploy"]["id"], r.json["event"]) for r in down.delivered("/hook/kill")]
        assert sorted(set(got)) == sorted(
            (d["id"], e) for d in deploys for e in ("deploy.started", "deploy.succeeded")
        )
        for d in deploys:
            mine = [e for i, e in got if i == d["id"]]
            assert mine.index("deploy.started") < mine.index("deploy.succeeded")
        assert {n["status"] for n in notifications(server)} == {"sent"}
    finally:
        down.stop()


def test_docker_hub_callback_once_per_push_with_command_output(autodock, unique, fake):
    repo = f"nhub/app-{unique}"
    failing = ["/bin/sh", "-c", "for i in $(seq 1 60); do echo line $i; done; echo boom; exit 3"]
    config = {
        "notifiers": {"stagestatus": {"type": "slack", "url": fake.url + SLACK_PATH}},
        "default_notify": ["stagestatus"],
        "rules": [
            {
                "name": "hub",
                "repo": repo,
                "tag": "stage",
                "actions": [{"command": ["/bin/true"], "name": "ok"}, {"command": failing}],
            }
        ],
        "discovery": {"labels": False},
        "outbox": FAST,
    }
    server = autodock(config)
    body = dockerhub_payload(repo, "stage", pusher="bob", callback=f"{fake.url}/hub/cb/t0ken")
    assert server.post("/autodock/v1/", body).status_code == 202
    server.wait_final(2)
    wait_for(lambda: len(fake.delivered(SLACK_PATH)) == 2, what="2 slack messages")
    wait_for(lambda: fake.delivered("/hub/cb/t0ken"), what="hub callback")
    time.sleep(1)
    (callback,) = fake.delivered("/hub/cb/t0ken")
    assert callback.json["state"] == "failure"
    assert callback.json["context"] == "autodock"
    assert callback.json["description"].startswith("1 of 2 deploys failed: hub: /bin/sh")

    failed = next(b for b in bodies(fake, SLACK_PATH) if b["text"].startswith("❌"))
    text = json.dumps(failed)
    assert "bob" in text and "boom" in text and "line 60" in text
    assert "line 1\\n" not in text  # only the tail of the output
    assert "t0ken" not in json.dumps(notifications(server))


def test_cli_notify_test(fake, tmp_path, monkeypatch):
    fake.fail("/hook/broken", 404, "no such hook")
    cfg = tmp_path / "autodock.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "notifiers": {
                    "stagestatus": {"type": "slack", "url": fake.url + SLACK_PATH},
                    "hook": {"type": "webhook", "url": f"{fake.url}/hook/t", "secret": "k"},
                    "broken": {"type": "webhook", "url": f"{fake.url}/hook/broken"},
                }
            }
        )
    )

    # In-process through the real `autodock` group. Only `notify` is offered as a lazy
    # group: cli.py's find_spec("autodock.ci.cli") raises while autodock.ci is absent.
    monkeypatch.setattr(
        AutodockGroup, "_available_lazy", lambda self: {"notify": LAZY_GROUPS["notify"]}
    )

    def run(*args):
        return CliRunner().invoke(main, ["notify", "test", *args, "-c", str(cfg)])

    ok = run("stagestatus")
    assert ok.exit_code == 0, ok.output
    assert "stagestatus" in ok.output and "sent" in ok.output
    assert "sl4ck" not in ok.output
    assert "it works" in fake.delivered(SLACK_PATH)[0].json["text"]

    everyone = run()
    assert everyone.exit_code == 6, everyone.output
    assert "broken" in everyone.output and "HTTP 404" in everyone.output
    (hook,) = fake.delivered("/hook/t")
    assert hook.json["event"] == "test" and hook.headers["X-Autodock-Signature"]
    assert "/hook/broken" not in everyone.output

    unknown = run("nope")
    assert unknown.exit_code == 3 and "no notifier named 'nope'" in unknown.output
