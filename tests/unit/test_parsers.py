import copy
import json
from pathlib import Path

import pytest

from autodock.exceptions import PayloadError
from autodock.intake.parsers import PARSERS, parse_json

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
DIGEST = "sha256:" + "b" * 64


def hub_payload():
    return json.loads((PAYLOADS / "dockerhub-push.json").read_text())


def registry_envelope():
    return json.loads((PAYLOADS / "registry-v2-push.json").read_text())


def test_dockerhub_sample():
    (event,), skipped = PARSERS["dockerhub"](hub_payload())
    assert skipped == 0
    assert (event.repo, event.tag, event.pusher, event.registry) == (
        "jincort/backend-auth",
        "stage",
        "ci-bot",
        None,
    )
    assert event.pushed_at == 1511432210
    assert event.callback_url.startswith("https://registry.hub.docker.com/")
    assert event.delivery_id == f"dockerhub:{event.callback_url}"
    assert event.placeholders()["repository.name"] == "backend-auth"
    assert event.placeholders()["repository.namespace"] == "jincort"


def test_registry_sample_uses_event_digest_and_host():
    (event,), skipped = PARSERS["registry"](registry_envelope())
    assert event.digest.startswith("sha256:4f2c8e1b")
    assert event.registry == "127.0.0.1:5000"
    assert event.delivery_id == "registry:5d3c6d1e-9a0b-4c7e-8f31-2b6a7c9e0d14"


def test_registry_skips_blobs_and_untagged_manifests():
    env = registry_envelope()
    blob = copy.deepcopy(env["events"][0])
    blob["target"]["mediaType"] = "application/octet-stream"
    untagged = copy.deepcopy(env["events"][0])
    del untagged["target"]["tag"]
    pull = copy.deepcopy(env["events"][0])
    pull["action"] = "pull"
    env["events"] += [blob, untagged, pull]
    events, skipped = PARSERS["registry"](env)
    assert len(events) == 1 and skipped == 3


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda b: b["push_data"].update(tag="a;rm -rf /"), "invalid tag"),
        (lambda b: b["push_data"].update(tag="a b"), "invalid tag"),
        (lambda b: b["push_data"].update(tag="../x"), "invalid tag"),
        (lambda b: b["push_data"].update(tag="a/b"), "invalid tag"),
        (lambda b: b["push_data"].update(tag=7), "push_data.tag"),
        (lambda b: b["repository"].update(repo_name="Org/App"), "invalid repository"),
        (lambda b: b["repository"].update(repo_name="org/a..b"), "invalid repository"),
        (lambda b: b["repository"].update(repo_name="evil.com:5000/org/app"), "invalid repo"),
        (lambda b: b.pop("repository"), "repository must be"),
        (lambda b: b["push_data"].update(pusher="-rf"), "pusher"),
        (lambda b: b["push_data"].update(pusher="a b"), "pusher"),
        (lambda b: b.update(callback_url="file:///etc/passwd"), "callback_url"),
    ],
)
def test_dockerhub_rejects(mutate, message):
    body = hub_payload()
    mutate(body)
    with pytest.raises(PayloadError, match=message):
        PARSERS["dockerhub"](body)


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[1,2"])
def test_invalid_json(body):
    with pytest.raises(PayloadError, match="not valid JSON"):
        parse_json(body)


@pytest.mark.parametrize("payload", [[], "x", 1, None, {"events": "x"}, {"events": [1]}])
def test_registry_wrong_shapes(payload):
    with pytest.raises(PayloadError):
        PARSERS["registry"](payload)


def test_registry_rejects_bad_digest():
    env = registry_envelope()
    env["events"][0]["target"]["digest"] = "sha256:nothex"
    with pytest.raises(PayloadError, match="digest"):
        PARSERS["registry"](env)


def test_registry_ignores_odd_host():
    env = registry_envelope()
    env["events"][0]["request"]["host"] = "evil host/;x"
    (event,), _ = PARSERS["registry"](env)
    assert event.registry is None


def test_generic_image_and_fields():
    (a,), _ = PARSERS["generic"]({"image": f"reg.local:5000/org/app:v1@{DIGEST}"})
    assert (a.registry, a.repo, a.tag, a.digest) == ("reg.local:5000", "org/app", "v1", DIGEST)
    (b,), _ = PARSERS["generic"]({"repo": "org/app", "tag": "stage", "registry": "h:5000"})
    assert (b.registry, b.repo, b.tag, b.digest) == ("h:5000", "org/app", "stage", None)
    with pytest.raises(PayloadError, match="needs a tag"):
        PARSERS["generic"]({"image": "org/app"})


def test_quay_and_harbor():
    events, _ = PARSERS["quay"](
        {"docker_url": "quay.io/org/app", "updated_tags": ["stage", "v1"], "repository": "org/app"}
    )
    assert [(e.registry, e.repo, e.tag) for e in events] == [
        ("quay.io", "org/app", "stage"),
        ("quay.io", "org/app", "v1"),
    ]
    harbor = {
        "type": "PUSH_ARTIFACT",
        "operator": "admin",
        "event_data": {
            "resources": [
                {"digest": DIGEST, "tag": "stage", "resource_url": "harbor.local/proj/app:stage"}
            ]
        },
    }
    (event,), _ = PARSERS["harbor"](harbor)
    assert (event.registry, event.repo, event.digest, event.pusher) == (
        "harbor.local",
        "proj/app",
        DIGEST,
        "admin",
    )
    assert PARSERS["harbor"]({"type": "DELETE_ARTIFACT"}) == ([], 1)
