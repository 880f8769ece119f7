"""The example HA stack: two autodock replicas on managers sharing PostgreSQL, secrets."""

from __future__ import annotations

from pathlib import Path

import yaml

from autodock.config import parse_config_text

ROOT = Path(__file__).resolve().parents[1]


def test_ha_stack_runs_two_manager_replicas_on_postgres():
    stack = yaml.safe_load((ROOT / "examples/autodock-ha-stack.yml").read_text())
    autodock, postgres = stack["services"]["autodock"], stack["services"]["postgres"]
    assert autodock["deploy"]["replicas"] == 2
    assert "node.role == manager" in autodock["deploy"]["placement"]["constraints"]
    db = next(a.split("=", 1)[1] for a in autodock["command"] if a.startswith("--db="))
    assert db.startswith("postgresql://") and "@postgres:5432/" in db
    assert "/var/run/docker.sock:/var/run/docker.sock" in autodock["volumes"]
    secrets = set(stack["secrets"])
    assert {"autodock_db_password", "autodock_webhook"} <= secrets
    assert set(autodock["secrets"]) == secrets
    env = autodock["environment"]
    assert env["AUTODOCK_DB_PASSWORD_FILE"] == "/run/secrets/autodock_db_password"
    assert env["AUTODOCK_HTTP_AUTH_FILE"] == "/run/secrets/autodock_webhook"
    assert postgres["image"].startswith("postgres:")
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == env["AUTODOCK_DB_PASSWORD_FILE"]
    # the config it mounts is valid and gets a lease setting
    config = parse_config_text((ROOT / "examples/autodock.yml").read_text(), db=db)
    assert config.db_target == db and config.lease_seconds == 30
