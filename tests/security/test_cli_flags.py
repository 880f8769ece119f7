"""The serve flags keep working and reach the config: basic user/pass, auth files (plain
or htpasswd -B), --insecure-no-auth, TLS."""

from __future__ import annotations

import bcrypt
import pytest
from click.testing import CliRunner

from autodock.cli import main
from autodock.config import BasicAuth
from autodock.intake.guard import WebhookGuard
from autodock.intake.parsers import PARSERS
from autodock.intake.policy import EndpointAuth


@pytest.fixture
def served(monkeypatch):
    seen = []
    monkeypatch.setattr("autodock.server.serve", seen.append)
    monkeypatch.setattr("autodock.logs.setup_logging", lambda *a, **k: None)
    monkeypatch.delenv("AUTODOCK_HTTP_AUTH_USER", raising=False)
    monkeypatch.delenv("AUTODOCK_HTTP_AUTH_PASS", raising=False)

    def run(*args: str):
        result = CliRunner().invoke(main, ["serve", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return seen[-1]

    return run


def test_basic_flags(served, tmp_path):
    cfg = served("--data-dir", str(tmp_path), "--http-auth-user", "u", "--http-auth-pass", "p")
    assert isinstance(cfg.auth, BasicAuth) and cfg.auth.resolve_password() == "p"
    plain = tmp_path / "auth"
    plain.write_text("u2:p2:with-colon\n")
    cfg = served("--data-dir", str(tmp_path), "--http-auth-file", str(plain))
    assert cfg.auth.username == "u2" and cfg.auth.resolve_password() == "p2:with-colon"
    assert served("--data-dir", str(tmp_path), "--insecure-no-auth").auth == "none"


def test_htpasswd_file_flag(served, tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(f"ci:{bcrypt.hashpw(b'ci-pass', bcrypt.gensalt(4)).decode()}\n")
    cfg = served("--data-dir", str(tmp_path), "--http-auth-file", str(path))
    assert isinstance(cfg.auth, EndpointAuth) and cfg.auth.htpasswd == path
    policy = WebhookGuard(cfg, PARSERS).policies["dockerhub"]
    assert policy.htpasswd is not None
    assert policy.htpasswd.check("ci", "ci-pass") and not policy.htpasswd.check("ci", "nope")


def test_tls_flags(served, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    cfg = served(
        "--data-dir",
        str(tmp_path),
        "--insecure-no-auth",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
    )
    assert (cfg.tls_cert, cfg.tls_key) == (cert, key)
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path), "--insecure-no-auth", "--tls-cert", str(cert)]
    )
    assert result.exit_code == 3 and "tls_key go together" in result.output
