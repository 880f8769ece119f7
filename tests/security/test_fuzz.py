"""Property-based fuzzing of every webhook endpoint, in process, on a temp store.

For any body and headers: never a 5xx; a refused request stores nothing; an accepted
one stores only events whose every field follows the grammar, and deploys only for
them (service names valid, command arguments free of control characters).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autodock.config import SERVICE_NAME_RE, Config
from autodock.reference import is_valid_digest, is_valid_domain, is_valid_repo, is_valid_tag
from tests.support.hooks import CATCH_ALL_RULES, Harness, basic

EXAMPLES = int(os.environ.get("AUTODOCK_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
MEDIA = "application/vnd.docker.distribution.manifest.v2+json"
NASTY = [
    "",
    " ",
    "-rf",
    "--help",
    "..",
    "../../etc/passwd",
    "$(id)",
    "`id`",
    "${image}",
    "a;b",
    "a\nb",
    "a\x00b",
    "a b",
    "\u202e",
    "ＡＢＣ",
    "org/app\n",
    "stage\n",
    "stage ",
    "x" * 300,
    "-host:5000",
    "ho..st:5000",
    "host:5000\n",
    "[::1]:5000",
    "localhost:99999",
    "\ud800",
    "sha256:" + "a" * 64 + "\n",
    "sha256:" + "A" * 64,
]
valid_repo = st.from_regex(r"\A[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4})?(?:/[a-z0-9]{1,6}){0,2}\Z")
valid_tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}\Z")
valid_host = st.from_regex(r"\A[a-z0-9]{1,8}(?:\.[a-z0-9]{1,5}){0,2}(?::[0-9]{1,5})?\Z")
valid_digest = st.from_regex(r"\Asha256:[a-f0-9]{64}\Z")
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values, often hostile ones, sometimes any JSON value."""
    near = valid.flatmap(
        lambda v: st.sampled_from([v + "\n", v + " ", "-" + v, v.upper(), v + "/.."])
    )
    return st.one_of(valid, valid, near, st.sampled_from(NASTY), st.text(max_size=30), json_value)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(None), strategy)


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


dockerhub = st.builds(
    lambda repo, tag, pusher, at, cb: drop_none(
        {
            "repository": {"repo_name": repo},
            "push_data": drop_none({"tag": tag, "pusher": pusher, "pushed_at": at}),
            "callback_url": cb,
        }
    ),
    field(valid_repo),
    field(valid_tag),
    maybe(field(st.sampled_from(["ci-bot", "alice@example.org"]))),
    maybe(st.one_of(st.integers(), st.floats(), json_value)),
    maybe(field(st.just("https://registry.hub.docker.com/u/org/app/hook/1/"))),
)
registry_event = st.builds(
    lambda action, media, repo, tag, digest, host, actor, ident: {
        "id": ident,
        "action": action,
        "target": drop_none({"mediaType": media, "repository": repo, "tag": tag, "digest": digest}),
        "request": {"host": host},
        "actor": {"name": actor},
    },
    st.sampled_from(["push", "pull", "delete"]) | json_value,
    st.sampled_from([MEDIA, "application/octet-stream"]) | json_value,
    field(valid_repo),
    maybe(field(valid_tag)),
    maybe(field(valid_digest)),
    maybe(field(valid_host)),
    maybe(field(st.just("ci-bot"))),
    maybe(field(st.uuids().map(str))),
)
registry = st.builds(lambda evs: {"events": evs}, st.lists(registry_event, max_size=4)) | json_value
generic = st.one_of(
    st.builds(
        lambda repo, tag, digest, reg, pusher, ident: drop_none(
            {
                "repo": repo,
                "tag": tag,
                "digest": digest,
                "registry": reg,
                "pusher": pusher,
                "id": ident,
            }
        ),
        field(valid_repo),
        field(valid_tag),
        maybe(field(valid_digest)),
        maybe(field(valid_host)),
        maybe(field(st.just("bot"))),
        maybe(field(st.just("delivery-1"))),
    ),
    st.builds(
        lambda host, repo, tag, digest: {
            "image": f"{host}/{repo}:{tag}" + (f"@{digest}" if digest else "")
        },
        field(valid_host).filter(lambda v: isinstance(v, str)),
        field(valid_repo).filter(lambda v: isinstance(v, str)),
        field(valid_tag).filter(lambda v: isinstance(v, str)),
        maybe(field(valid_digest).filter(lambda v: isinstance(v, str))),
    ),
)
quay = st.builds(
    lambda url, tags: {"docker_url": url, "updated_tags": tags},
    st.one_of(
        st.builds(lambda h, r: f"{h}/{r}", valid_host, valid_repo),
        field(st.just("quay.io/org/app")),
    ),
    st.lists(field(valid_tag), max_size=4) | json_value,
)
harbor = st.builds(
    lambda kind, url, tag, digest, op: {
        "type": kind,
        "operator": op,
        "event_data": {
            "resources": [drop_none({"resource_url": url, "tag": tag, "digest": digest})]
        },
    },
    st.sampled_from(["PUSH_ARTIFACT", "PULL_ARTIFACT"]) | json_value,
    st.one_of(
        st.builds(lambda h, r, t: f"{h}/{r}:{t}", valid_host, valid_repo, valid_tag),
        field(st.just("h/o/a")),
    ),
    field(valid_tag),
    maybe(field(valid_digest)),
    maybe(field(st.just("admin"))),
)
PAYLOADS = {
    "dockerhub": dockerhub,
    "registry": registry,
    "generic": generic,
    "quay": quay,
    "harbor": harbor,
}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Harness:
    path: Path = tmp_path_factory.mktemp("fuzz") / "store.db"
    h = Harness(
        Config.model_validate(
            {
                "db": str(path),
                "auth": {"username": "hook", "password": "fuzz-pass"},
                "discovery": {"labels": False},
                "rules": CATCH_ALL_RULES,
                "dedup_window": 0,
            }
        )
    )
    h.fuzz_client = h.client()  # type: ignore[attr-defined]
    yield h
    check_store(h)
    h.close()


def totals(h: Harness) -> tuple[int, int]:
    db = h.ctx.store._db  # type: ignore[attr-defined]
    return (
        db.execute("SELECT count(*) FROM events").fetchone()[0],
        db.execute("SELECT count(*) FROM deploys").fetchone()[0],
    )


def check_store(h: Harness) -> None:
    db = sqlite3.connect(h.config.db_target)
    db.row_factory = sqlite3.Row
    try:
        for e in db.execute("SELECT * FROM events"):
            assert is_valid_repo(e["repo"]), dict(e)
            assert is_valid_tag(e["tag"]), dict(e)
            assert e["registry"] is None or is_valid_domain(e["registry"]), dict(e)
            assert e["digest"] is None or is_valid_digest(e["digest"]), dict(e)
            assert e["pusher"] is None or not CONTROL.search(e["pusher"]), dict(e)
            assert e["callback_url"] is None or not CONTROL.search(e["callback_url"]), dict(e)
        orphans = db.execute(
            "SELECT count(*) FROM deploys d LEFT JOIN events e ON e.id = d.event_id"
            " WHERE e.id IS NULL OR e.status != 'accepted'"
        ).fetchone()[0]
        assert orphans == 0
        for d in db.execute("SELECT kind, target, action FROM deploys"):
            action = json.loads(d["action"])
            if d["kind"] == "service":
                assert SERVICE_NAME_RE.match(action["service"]), action
            else:
                assert action["argv"][0] == "true"
                assert not any(CONTROL.search(a) or a.startswith("-") for a in action["argv"]), (
                    action
                )
    finally:
        db.close()


def post(h: Harness, path: str, content: bytes, headers: dict[str, str] | None = None):
    before = totals(h)
    reply = h.fuzz_client.post(  # type: ignore[attr-defined]
        path, content=content, headers={**basic("hook", "fuzz-pass"), **(headers or {})}
    )
    assert reply.status_code < 500, (path, content[:300], reply.text)
    if reply.status_code != 202:
        assert totals(h) == before, "a refused request left rows behind"
    else:
        assert isinstance(reply.json()["events"], list)
    return reply


@pytest.mark.parametrize("source", sorted(PAYLOADS))
def test_structured_payloads(app, source):
    @FUZZ
    @given(PAYLOADS[source])
    def run(payload):
        path = "/autodock/v1/" if source == "dockerhub" else f"/hooks/{source}"
        post(app, path, json.dumps(payload).encode())

    run()
    check_store(app)


@FUZZ
@given(
    path=st.sampled_from(
        ["/autodock/v1/", "/autodock/v1", *(f"/hooks/{s}" for s in PAYLOADS), "/hooks/x"]
    ),
    body=st.one_of(
        st.binary(max_size=300),
        json_value.map(lambda v: json.dumps(v).encode()),
        st.sampled_from(
            [
                b"[" * 5000 + b"]" * 5000,
                b'{"a":' * 3000 + b"1" + b"}" * 3000,
                b"\xff\xfe",
                b"NaN",
                b"1e999",
            ]
        ),
    ),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
)
def test_raw_bodies(app, path, body, content_type):
    post(app, path, body, {"Content-Type": content_type} if content_type else None)


@FUZZ
@given(
    authorization=st.one_of(
        st.text(max_size=60).filter(lambda s: s.isprintable()),
        st.builds(
            lambda u, p: basic(u, p)["Authorization"], st.text(max_size=10), st.text(max_size=10)
        ),
        st.sampled_from(["Basic", "Basic ", "Basic !!!", "Bearer", "basic aG9vazpmdXp6LXBhc3M="]),
        st.builds(
            lambda scheme, rest: f"{scheme} {rest}",
            st.sampled_from(["Basic", "Bearer", "basic"]),
            st.text(max_size=30).filter(lambda s: s.isprintable()),
        ),
    )
)
def test_authorization_headers(app, authorization):
    if not hasattr(app, "auth_client"):
        app.auth_client = app.client("10.9.9.9")  # type: ignore[attr-defined]
    reply = app.auth_client.post(  # type: ignore[attr-defined]
        "/hooks/generic",
        content=b'{"repo": "org/app", "tag": "x"}',
        headers={"Authorization": authorization.encode("utf-8")},
    )
    assert reply.status_code in (202, 401, 429), reply.text
    if authorization != "basic aG9vazpmdXp6LXBhc3M=" and reply.status_code == 202:
        raise AssertionError(f"accepted {authorization!r}")


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["target", "status", "repo", "since", "until", "before_id", "limit"]),
        st.one_of(
            st.text(max_size=20),
            st.integers().map(str),
            st.floats().map(str),
            st.sampled_from(["99999999999999999999", "-1", "nan", "1e999", "\x00"]),
        ),
    ),
    deploy_id=st.one_of(st.integers(), st.from_regex(r"\A[a-z0-9.+-]{1,10}\Z")),
)
def test_read_api_parameters(app, params, deploy_id):
    c = app.fuzz_client  # type: ignore[attr-defined]
    assert c.get("/api/v1/deploys", params=params).status_code in (200, 422)
    assert c.get("/api/v1/events", params=params).status_code in (200, 422)
    one = c.get(f"/api/v1/deploys/{deploy_id}")
    assert one.status_code in (200, 404, 422), (deploy_id, one.text)
