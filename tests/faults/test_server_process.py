"""A real ``autodock serve`` process: TLS, a slow body, and secrets kept out of logs,
API answers and the environment of commands."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from tests.support.lab import ROOT, basic_header, free_port, wait_for

pytestmark = pytest.mark.e2e


def serve(tmp_path, config: dict, *args: str, env: dict | None = None) -> subprocess.Popen:
    path = tmp_path / "autodock.yml"
    path.write_text(yaml.safe_dump(config))
    log = (tmp_path / "autodock.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "autodock.cli", "serve", "--config", str(path), *args],
        stdout=log,
        stderr=log,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def test_tls(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    config = {
        "listen": f"127.0.0.1:{port}",
        "data_dir": str(tmp_path / "data"),
        "auth": {"username": "hook", "password": "tls-pass"},
        "discovery": {"labels": False},
    }
    proc = serve(tmp_path, config, "--tls-cert", str(cert), "--tls-key", str(key))
    trust = ssl.create_default_context(cafile=str(cert))
    try:

        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "autodock.log").read_text()
            try:
                return httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trust).is_success
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30, what="autodock over TLS")
        reply = httpx.post(
            f"https://127.0.0.1:{port}/hooks/generic",
            json={"repo": "org/app", "tag": "v1"},
            auth=("hook", "tls-pass"),
            verify=trust,
        )
        assert reply.status_code == 202, reply.text
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not answered
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
        with pytest.raises(httpx.ConnectError):  # and an untrusted certificate is refused
            httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=3)
        assert "listening on https://127.0.0.1" in (tmp_path / "autodock.log").read_text()
    finally:
        stop(proc)


def test_slow_body_is_cut_off_with_408(autodock):
    server = autodock({"body_timeout": 1, "discovery": {"labels": False}})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        head = (
            "POST /hooks/generic HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: {basic_header('test', 's3cret-pass')}\r\nContent-Length: 100\r\n\r\n"
        )
        started = time.monotonic()
        s.sendall(head.encode() + b'{"repo": ')
        answer = s.recv(4096).decode()
        took = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408"), answer
    assert 0.8 <= took < 5


def test_secrets_stay_out_of_logs_api_and_command_env(autodock, tmp_path, unique):
    token, password, key = f"tok-{unique}-T", f"pw-{unique}-P", f"hm-{unique}-K"
    argv_secret = f"--api-key=argv-{unique}-A"
    env_file = tmp_path / "env.txt"
    server = autodock(
        {
            "auth": {"username": "hook", "password_env": "HOOK_PASSWORD"},
            "webhooks": {
                "endpoints": {
                    "registry": {"bearer": [{"env": "HOOK_TOKEN"}]},
                    "harbor": {"hmac": {"secret": {"env": "HOOK_HMAC"}}},
                }
            },
            "discovery": {"labels": False},
            "log_format": "json",
            "rules": [
                {
                    "repo": f"sec/{unique}",
                    "command": [
                        "sh",
                        "-c",
                        'env > "$0"; echo "$1"',
                        str(env_file),
                        "${image}",
                        argv_secret,  # a literal in the config's argv: never shown by the API
                    ],
                }
            ],
        },
        env={"HOOK_PASSWORD": password, "HOOK_TOKEN": token, "HOOK_HMAC": key},
    )
    url = server.url
    push = {"repo": f"sec/{unique}", "tag": "v1"}
    for auth in [("hook", password + "x"), ("hook", password[:-1]), ("x", password)]:
        assert server.post("/hooks/generic", push, auth=auth).status_code == 401
    for bad in (token + "x", token[:-1], password):
        reply = httpx.post(
            f"{url}/hooks/registry",
            content=b'{"events": []}',
            headers={"Authorization": f"Bearer {bad}"},
        )
        assert reply.status_code == 401
    reply = httpx.post(
        f"{url}/hooks/harbor", content=b"{}", headers={"X-Hub-Signature-256": "sha256=00"}
    )
    assert reply.status_code == 401
    ok = httpx.post(
        f"{url}/hooks/registry",
        content=b'{"events": []}',
        headers={"Authorization": f"Bearer {token}"},
    )
    assert ok.status_code == 202
    assert server.post("/hooks/generic", push, auth=("hook", password)).status_code == 202
    (deploy,) = server.wait_final(1, timeout=30)
    assert deploy["status"] == "succeeded", deploy

    answers = [
        httpx.get(f"{url}{p}").text
        for p in ("/api/v1/deploys", "/api/v1/events", f"/api/v1/deploys/{deploy['id']}")
        + ("/healthz", "/metrics", "/api/openapi.json")
    ]
    logs = server.log()
    assert "refused generic webhook" in logs and "refused registry webhook" in logs
    child_env = env_file.read_text()
    assert "HOOK_TOKEN" not in child_env and "HOOK_PASSWORD" not in child_env
    assert all(argv_secret not in a for a in answers)
    for secret in (token, password, key, token[:-1], password[:-1]):
        b64 = base64.b64encode(f"hook:{secret}".encode()).decode()
        for where, text in [("log", logs), ("env", child_env), *(("api", a) for a in answers)]:
            assert secret not in text and b64 not in text, f"{secret!r} leaked into the {where}"


def test_idle_keep_alive_connections_are_closed(autodock):
    server = autodock({"discovery": {"labels": False}})
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert s.recv(4096) == b""  # closed by the server (timeout_keep_alive 5s)
        assert 3 < time.monotonic() - started < 10
