import json
from pathlib import Path

import pytest

from autodock.config import CommandAction, ServiceAction, load_config, parse_config_text
from autodock.exceptions import ConfigError

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"


def test_legacy_config_loads_unchanged():
    cfg = load_config(PAYLOADS / "legacy-config.json")
    assert cfg.legacy
    assert [r.name for r in cfg.rules] == ["jincort/backend-auth", "jincort/frontend-wallets"]
    (action,) = cfg.rules[0].all_actions()
    assert isinstance(action, CommandAction)
    assert action.command[3:] == [
        "${repository.repo_name}",
        "${push_data.tag}",
        "${push_data.pusher}",
    ]
    assert cfg.rules[0].tags == ["*"]


def test_yaml_rules_and_shorthands():
    cfg = parse_config_text(
        """
rules:
  - name: stage
    repo: ["jincort/*", "other/app"]
    tag: stage
    services: [stage_auth]
    command: [echo, "${push_data.tag}"]
    actions:
      - service: "stage_${repository.name}"
        timeout: 30
"""
    )
    actions = cfg.rules[0].all_actions()
    assert [type(a) for a in actions] == [ServiceAction, ServiceAction, CommandAction]
    assert actions[0].timeout == 30
    assert cfg.rules[0].repos == ["jincort/*", "other/app"]


@pytest.mark.parametrize(
    "text,line,message",
    [
        (
            "rules:\n  - repo: a/b\n    actions:\n      - service: 'bad name'\n",
            4,
            "invalid service",
        ),
        ("rules:\n  - repo: a/b\n    command: [x, '${nope}']\n", 3, "unknown placeholder"),
        ("rules:\n  - repo: a/b\n", 2, "at least one of"),
        ("workers: 0\n", 1, "greater than or equal to 1"),
        ("listen: nowhere\n", 1, "HOST:PORT"),
        ("rules:\n  - repo: a/b\n    command: [x]\n    colour: red\n", 4, "Extra inputs"),
        ("rules: [\n", 2, None),
    ],
)
def test_errors_name_the_line(text, line, message):
    with pytest.raises(ConfigError) as info:
        parse_config_text(text)
    problems = info.value.problems
    assert problems and problems[0][0] == line, problems
    if message:
        assert message in str(info.value)
    assert f"line {line}" in str(info.value)


def test_legacy_errors_have_lines():
    text = json.dumps({"org/app": ["x"], "Bad Repo": ["y"]}, indent=2)
    with pytest.raises(ConfigError) as info:
        parse_config_text(text)
    assert info.value.problems == [(5, "invalid repository name 'Bad Repo'")]
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_config_text('{"org/app": [\n  "x",\n}')


def test_secret_sources(tmp_path, monkeypatch):
    secret = tmp_path / "pass"
    secret.write_text("from-file\n")
    monkeypatch.setenv("MY_PASS", "from-env")
    a = parse_config_text(f"auth: {{username: u, password_file: {secret}}}")
    b = parse_config_text("auth: {username: u, password_env: MY_PASS}")
    assert a.auth.resolve_password() == "from-file"
    assert b.auth.resolve_password() == "from-env"
    assert "from-env" not in repr(b) and "from-file" not in repr(a)
    c = parse_config_text("auth: {username: u, password: inline}")
    assert "inline" not in repr(c)


def test_defaults():
    cfg = load_config(None)
    assert cfg.host_port == ("0.0.0.0", 58732)
    assert cfg.workers == 2
    assert cfg.db_target.endswith("autodock.db")
