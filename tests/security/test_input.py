"""Values that used to slip through the grammar (found by the fuzz suite)."""

from __future__ import annotations

import pytest

from autodock.config import SERVICE_NAME_RE
from autodock.exceptions import PayloadError
from autodock.intake.parsers import PARSERS, parse_json, parse_registry_host
from autodock.reference import is_valid_digest, is_valid_repo, is_valid_tag

MEDIA = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.mark.parametrize(
    "check, value",
    [
        (is_valid_repo, "org/app\n"),
        (is_valid_tag, "stage\n"),
        (is_valid_digest, "sha256:" + "a" * 64 + "\n"),
        (lambda v: bool(SERVICE_NAME_RE.match(v)), "web\n"),
    ],
)
def test_a_trailing_newline_is_not_part_of_a_name(check, value):
    assert check(value.rstrip("\n"))
    assert not check(value)


@pytest.mark.parametrize(
    "host", ["-oProxyCommand=x", "ho..st", ".host", "host-", "host:5000\n", "a b", "h/x", ""]
)
def test_registry_hosts_follow_the_domain_grammar(host):
    assert parse_registry_host(host) is None
    with pytest.raises(PayloadError):
        PARSERS["generic"]({"repo": "org/app", "tag": "x", "registry": host})


@pytest.mark.parametrize("host", ["registry.example.com:5000", "localhost", "[::1]:5000", "r-1"])
def test_good_registry_hosts_pass(host):
    assert parse_registry_host(host) == host


@pytest.mark.parametrize(
    "callback",
    [
        "https://h/x\n",
        "javascript:alert(1)",
        "https://h/\ud800",
        "http://h/" + "x" * 2000,
        "https://",
    ],
)
def test_dockerhub_callback_urls_are_checked(callback):
    body = {"repository": {"repo_name": "org/app"}, "push_data": {"tag": "x"}}
    with pytest.raises(PayloadError):
        PARSERS["dockerhub"]({**body, "callback_url": callback})


def test_hostile_shapes_are_payload_errors_not_crashes():
    with pytest.raises(PayloadError, match="nested too deeply"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)
    envelope = {"events": [{"action": "push", "target": {"mediaType": [MEDIA], "tag": "x"}}]}
    assert PARSERS["registry"](envelope) == ([], 1)
