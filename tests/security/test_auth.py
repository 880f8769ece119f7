"""Auth modes per endpoint, client addresses behind proxies, failure rate limiting.

Each test builds the real app (``create_app(build_context(config))``) on a temp store.
"""

from __future__ import annotations

import json
import logging
import sqlite3

import bcrypt
import pytest

from autodock.config import parse_config_text
from autodock.exceptions import ConfigError
from autodock.intake.guard import FailureLimiter, client_address
from autodock.server import build_context
from tests.support.hooks import basic, signature

PUSH = {"repo": "org/app", "tag": "stage"}
BODY = json.dumps(PUSH).encode()


def events_in(harness) -> int:
    db = sqlite3.connect(harness.config.db_target)
    try:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        db.close()


def test_legacy_basic_auth_still_works(harness):
    h = harness(auth={"username": "hook", "password": "p4ss-word"})
    c = h.client()
    assert c.post("/autodock/v1/", content=BODY).status_code == 401
    wrong = c.post("/hooks/generic", content=BODY, headers=basic("hook", "p4ss-wordX"))
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic ")
    assert (
        c.post("/hooks/generic", content=BODY, headers=basic("hook", "p4ss-word")).status_code
        == 202
    )
    assert events_in(h) == 1


def test_auth_none_is_the_only_way_to_open_every_endpoint(harness, tmp_path):
    open_ = harness(auth="none")
    assert open_.client().post("/hooks/generic", content=BODY).status_code == 202
    cfg = parse_config_text(f"db: {tmp_path / 'x.db'}\n")
    with pytest.raises(ConfigError, match="no webhook credentials configured"):
        build_context(cfg)
    # One endpoint configured, the rest not: refused at start-up, naming the others.
    cfg = parse_config_text(
        f"db: {tmp_path / 'y.db'}\nwebhooks: {{endpoints: {{registry: {{open: true}}}}}}\n"
    )
    with pytest.raises(ConfigError, match="dockerhub, generic, quay, harbor"):
        build_context(cfg)


@pytest.mark.parametrize(
    "text, message",
    [
        ("auth: {bearer: []}", "at least one of"),
        ("webhooks: {endpoints: {'*': {open: true, bearer: [{value: t}]}}}", "cannot be combined"),
        ("webhooks: {endpoints: {'*': {open: true, allow_cidrs: [10.0.0.0/33]}}}", "allow_cidrs"),
        ("webhooks: {endpoints: {'*': {bearer: [{value: t, env: X}]}}}", "exactly one"),
        ("webhooks: {trusted_proxies: [not-an-ip]}", "trusted_proxies"),
        ("tls_cert: /x.pem", "tls_key go together"),
    ],
)
def test_bad_auth_config_is_refused_with_a_line(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config_text(text)


def test_unknown_endpoint_names_are_refused(harness):
    with pytest.raises(ConfigError, match="unknown endpoint"):
        harness(webhooks={"endpoints": {"gitlab": {"open": True}, "*": {"open": True}}})


def test_per_endpoint_modes(harness, tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "tok-3f9a")
    monkeypatch.setenv("HOOK_HMAC", "hmac-key-77")
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"hub-pass", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)
    htpasswd.write_text(f"# users\nhub:{hashed}\n")
    h = harness(
        auth={"username": "fallback", "password": "fb-pass"},
        webhooks={
            "endpoints": {
                "registry": {"bearer": [{"env": "HOOK_TOKEN"}]},
                "generic": {"hmac": {"secret": {"env": "HOOK_HMAC"}}},
                "harbor": {"hmac": {"secret": {"value": "h2"}, "header": "X-Sig", "prefix": "v1="}},
                "dockerhub": {"htpasswd": str(htpasswd)},
            }
        },
    )
    c = h.client()
    reg = json.dumps({"events": []}).encode()
    assert c.post("/hooks/registry", content=reg).status_code == 401
    bad = c.post("/hooks/registry", content=reg, headers={"Authorization": "Bearer tok-3f9"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Bearer")
    assert (
        c.post("/hooks/registry", content=reg, headers=basic("fallback", "fb-pass")).status_code
        == 401
    )
    ok = c.post("/hooks/registry", content=reg, headers={"Authorization": "Bearer tok-3f9a"})
    assert ok.status_code == 202

    sig = signature("hmac-key-77", BODY)
    assert c.post("/hooks/generic", content=BODY).status_code == 401
    ok = c.post("/hooks/generic", content=BODY, headers={"X-Hub-Signature-256": sig})
    assert ok.status_code == 202, ok.text
    tampered = BODY.replace(b"stage", b"prod!")
    assert (
        c.post("/hooks/generic", content=tampered, headers={"X-Hub-Signature-256": sig}).status_code
        == 401
    )
    no_prefix = sig.removeprefix("sha256=")
    assert (
        c.post(
            "/hooks/generic", content=BODY, headers={"X-Hub-Signature-256": no_prefix}
        ).status_code
        == 401
    )
    upper = "sha256=" + no_prefix.upper()
    assert (
        c.post("/hooks/generic", content=BODY, headers={"X-Hub-Signature-256": upper}).status_code
        == 202
    )

    harbor = json.dumps({"type": "PING"}).encode()
    assert (
        c.post(
            "/hooks/harbor", content=harbor, headers={"X-Sig": signature("h2", harbor)}
        ).status_code
        == 401
    )
    ok = c.post("/hooks/harbor", content=harbor, headers={"X-Sig": signature("h2", harbor, "v1=")})
    assert ok.status_code == 202

    hub = json.dumps({"repository": {"repo_name": "org/app"}, "push_data": {"tag": "x"}}).encode()
    assert c.post("/autodock/v1/", content=hub, headers=basic("hub", "hub-pas")).status_code == 401
    assert (
        c.post("/autodock/v1/", content=hub, headers=basic("nobody", "hub-pass")).status_code == 401
    )
    assert c.post("/autodock/v1/", content=hub, headers=basic("hub", "hub-pass")).status_code == 202
    assert (
        c.post("/hooks/dockerhub", content=hub, headers=basic("hub", "hub-pass")).status_code == 202
    )
    # quay has no entry: the top-level auth applies.
    assert (
        c.post("/hooks/quay", content=b"{}", headers=basic("fallback", "fb-pass")).status_code
        == 400
    )
    assert c.post("/hooks/quay", content=b"{}", headers=basic("hub", "hub-pass")).status_code == 401


def test_htpasswd_refuses_other_hash_kinds(harness, tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text("hub:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    with pytest.raises(ConfigError, match="bcrypt"):
        harness(webhooks={"endpoints": {"*": {"htpasswd": str(path)}}})


def test_cidr_allowlist_and_trusted_proxies(harness):
    h = harness(
        webhooks={
            "endpoints": {"*": {"open": True, "allow_cidrs": ["192.168.5.0/24", "fd00::/8"]}},
            "trusted_proxies": ["10.1.0.0/16"],
        }
    )
    assert h.client("192.168.5.9").post("/hooks/generic", content=BODY).status_code == 202
    assert h.client("fd00::5").post("/hooks/generic", content=BODY).status_code == 202
    denied = h.client("192.168.6.9").post("/hooks/generic", content=BODY)
    assert denied.status_code == 403
    # An untrusted peer cannot claim an allowed address with X-Forwarded-For.
    spoof = {"X-Forwarded-For": "192.168.5.9"}
    assert (
        h.client("8.8.8.8").post("/hooks/generic", content=BODY, headers=spoof).status_code == 403
    )
    # Behind the trusted proxy, the rightmost untrusted hop is the client.
    via = h.client("10.1.2.3")
    ok = {"X-Forwarded-For": "8.8.8.8, 192.168.5.9"}
    assert via.post("/hooks/generic", content=BODY, headers=ok).status_code == 202
    forged = {"X-Forwarded-For": "192.168.5.9, 8.8.8.8"}  # the client prepended a lie
    assert via.post("/hooks/generic", content=BODY, headers=forged).status_code == 403
    assert via.post("/hooks/generic", content=BODY).status_code == 403  # the proxy itself


def test_client_address_parsing():
    import ipaddress

    trusted = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]
    ip = ipaddress.ip_address
    assert client_address("1.2.3.4", ["5.6.7.8"], trusted) == ip("1.2.3.4")
    assert client_address("10.0.0.1", ["5.6.7.8, 10.0.0.2"], trusted) == ip("5.6.7.8")
    assert client_address("10.0.0.1", ["9.9.9.9", "5.6.7.8"], trusted) == ip("5.6.7.8")
    assert client_address("10.0.0.1", ["10.0.0.3"], trusted) == ip("10.0.0.3")
    assert client_address("10.0.0.1", ["1.1.1.1, garbage"], trusted) == ip("10.0.0.1")
    assert client_address("::1", ["[2001:db8::1]"], trusted) == ip("2001:db8::1")
    assert client_address(None, [], trusted) is None


def test_failed_attempts_are_rate_limited_per_source(harness):
    h = harness(
        auth={"username": "hook", "password": "right"},
        webhooks={"rate_limit": {"failures": 3, "window": 60}},
    )
    attacker, friend = h.client("203.0.113.7"), h.client("198.51.100.1")
    for _ in range(3):
        assert (
            attacker.post(
                "/hooks/generic", content=BODY, headers=basic("hook", "guess")
            ).status_code
            == 401
        )
    blocked = attacker.post("/hooks/generic", content=BODY, headers=basic("hook", "right"))
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert (
        friend.post("/hooks/generic", content=BODY, headers=basic("hook", "right")).status_code
        == 202
    )
    assert events_in(h) == 1


def test_failure_limiter_window_and_memory_bound():
    lim = FailureLimiter(failures=2, window=10, max_sources=100)
    lim.failed("a", 0.0)
    assert lim.retry_after("a", 1.0) is None
    lim.failed("a", 1.0)
    assert lim.retry_after("a", 2.0) == pytest.approx(8.0)
    assert lim.retry_after("a", 10.5) is None  # the first failure left the window
    for i in range(1000):
        lim.failed(f"src{i}", 5.0)
    assert len(lim._seen) <= 100


def test_secrets_never_logged(harness, caplog, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "tok-SECRET-1")
    h = harness(
        auth={"username": "hook", "password": "pw-SECRET-2"},
        webhooks={"endpoints": {"registry": {"bearer": [{"env": "HOOK_TOKEN"}]}}},
        log_format="json",
    )
    c = h.client()
    with caplog.at_level(logging.DEBUG):
        c.post("/hooks/generic", content=BODY, headers=basic("hook", "pw-SECRET-2x"))
        c.post("/hooks/generic", content=BODY, headers=basic("hook", "pw-SECRET-2"))
        c.post(
            "/hooks/registry",
            content=b'{"events": []}',
            headers={"Authorization": "Bearer tok-SECRET-1x"},
        )
        c.post(
            "/hooks/registry",
            content=b'{"events": []}',
            headers={"Authorization": "Bearer tok-SECRET-1"},
        )
        pages = [
            c.get(p).text
            for p in (
                "/api/v1/deploys",
                "/api/v1/events",
                "/healthz",
                "/metrics",
                "/api/openapi.json",
            )
        ]
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert "refused generic webhook" in logged
    for secret in ("SECRET-1", "SECRET-2", "cHctU0VDUkVU"):  # cHctU0VDUkVU: base64 of pw-SECRET
        assert secret not in logged
        assert all(secret not in page for page in pages)


def test_read_api_is_protected_when_configured(harness):
    h = harness(
        auth={"username": "hook", "password": "pw"},
        webhooks={"endpoints": {"api": {"bearer": [{"value": "read-tok"}]}}},
    )
    c = h.client()
    read = {"Authorization": "Bearer read-tok"}
    for path in ("/api/v1/deploys", "/api/v1/events", "/metrics", "/api/openapi.json"):
        assert c.get(path).status_code == 401, path
        assert c.get(path, headers=read).status_code == 200, path
    assert c.get("/healthz").status_code == 200
    # The webhook credentials do not open the API, nor the API token the webhooks.
    assert c.get("/api/v1/deploys", headers=basic("hook", "pw")).status_code == 401
    assert c.post("/hooks/generic", content=BODY, headers=read).status_code == 401
    # Without an 'api' entry the read API stays as it was (open, read-only).
    assert harness(auth="none").client().get("/api/v1/deploys").status_code == 200
    with pytest.raises(ConfigError, match="hmac needs a body"):
        harness(auth="none", webhooks={"endpoints": {"api": {"hmac": {"secret": {"value": "k"}}}}})


@pytest.mark.parametrize("value", ["Basic Â¡", "Basic ===", "Basic dXNlcg==", "Bearer", "Digest x"])
def test_malformed_authorization_is_401_not_500(harness, value):
    h = harness(auth={"username": "hook", "password": "pw"})
    reply = h.client().post(
        "/hooks/generic", content=BODY, headers={"Authorization": value.encode()}
    )
    assert reply.status_code == 401
