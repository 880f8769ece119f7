"""Parity: the pure diff (table-driven) and one run against real Swarm services."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from autodock.db.cli import parity
from autodock.db.parity import diff_schemas, diff_summaries, split_image, summarize_service


def svc(**over):
    base = {
        "image": "org/api",
        "tag": "1.4",
        "env": ["DB_URL", "LOG_LEVEL"],
        "configs": ["/etc/app.yml"],
        "secrets": ["db_password"],
        "networks": ["backend"],
        "replicas": 2,
        "resources": {"limits.memory": 512},
    }
    return {**base, **over}


CASES = [
    ("identical", {"api": svc()}, {"api": svc()}, [], []),
    ("tag", {"api": svc(tag="1.5-rc")}, {"api": svc()}, [], [("api.tag", "1.5-rc", "1.4")]),
    (
        "image",
        {"api": svc(image="org/api-dev")},
        {"api": svc()},
        [],
        [("api.image", "org/api-dev", "org/api")],
    ),
    (
        "env keys, both ways",
        {"api": svc(env=["DB_URL", "DEBUG"])},
        {"api": svc()},
        [],
        [("api.env.DEBUG", "present", None), ("api.env.LOG_LEVEL", None, "present")],
    ),
    (
        "replicas allowed",
        {"api": svc(replicas=1)},
        {"api": svc()},
        ["*.replicas"],
        [("api.replicas", 1, 2, True)],
    ),
    (
        "config",
        {"api": svc(configs=[])},
        {"api": svc()},
        [],
        [("api.config./etc/app.yml", None, "present")],
    ),
    (
        "secret",
        {"api": svc(secrets=["db_password", "x"])},
        {"api": svc()},
        [],
        [("api.secret.x", "present", None)],
    ),
    (
        "network",
        {"api": svc(networks=["backend", "debug"])},
        {"api": svc()},
        [],
        [("api.network.debug", "present", None)],
    ),
    (
        "resources",
        {"api": svc(resources={})},
        {"api": svc()},
        [],
        [("api.resources.limits.memory", None, 512)],
    ),
    ("missing service", {}, {"api": svc()}, [], [("api", None, "present")]),
    (
        "extra service allowed",
        {"api": svc(), "debug": svc()},
        {"api": svc()},
        ["debug"],
        [("debug", "present", None, True)],
    ),
    (
        "glob allow on env",
        {"api": svc(env=["X"])},
        {"api": svc(env=["Y"])},
        ["api.env.*"],
        [("api.env.X", "present", None, True), ("api.env.Y", None, "present", True)],
    ),
]


@pytest.mark.parametrize(
    ("stage", "prod", "allow", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_diff_summaries(stage, prod, allow, expected):
    got = [
        (d.key, d.stage, d.prod, *([True] if d.allowed else []))
        for d in diff_summaries(stage, prod, allow)
    ]
    assert got == expected


def test_diff_schemas():
    prod = {
        "users": {
            "columns": {"id": "integer not null", "email": "text"},
            "constraints": {},
            "indexes": {},
        },
        "orders": {
            "columns": {"id": "integer"},
            "constraints": {},
            "indexes": {"o_idx": "CREATE INDEX"},
        },
    }
    stage = {
        "users": {"columns": {"id": "bigint not null"}, "constraints": {}, "indexes": {}},
        "extra": {"columns": {}, "constraints": {}, "indexes": {}},
        "orders": {"columns": {"id": "integer"}, "constraints": {}, "indexes": {}},
    }
    got = [
        (d.key, d.kind, d.stage, d.prod, d.allowed) for d in diff_schemas(stage, prod, ["db.extra"])
    ]
    assert got == [
        ("db.extra", "table", "present", None, True),
        ("db.orders.index.o_idx", "index", None, "CREATE INDEX", False),
        ("db.users.email", "column", None, "text", False),
        ("db.users.id", "column", "bigint not null", "integer not null", False),
    ]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("org/api:1.2@sha256:abc", ("org/api", "1.2")),
        ("127.0.0.1:5000/org/api", ("127.0.0.1:5000/org/api", "latest")),
        ("127.0.0.1:5000/org/api:stage", ("127.0.0.1:5000/org/api", "stage")),
    ],
)
def test_split_image(image, expected):
    assert split_image(image) == expected


def test_summarize_service_never_keeps_env_values():
    attrs = {
        "Spec": {
            "Mode": {"Replicated": {"Replicas": 3}},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "a/b:1@sha256:x", "Env": ["PASSWORD=hunter2", "A=1"]},
                "Networks": [{"Target": "n1"}],
                "Resources": {"Limits": {"NanoCPUs": 500_000_000}},
            },
        }
    }
    s = summarize_service(attrs, "stage_", {"n1": "stage_backend"})
    assert s["env"] == ["A", "PASSWORD"] and "hunter2" not in json.dumps(s)
    assert (s["replicas"], s["networks"], s["resources"]) == (3, ["backend"], {"limits.cpus": 0.5})


@pytest.mark.e2e
def test_parity_against_real_services(docker_client, make_service, unique):
    from docker.types import ServiceMode

    stage, prod = f"pst{unique}_", f"ppr{unique}_"
    common = {"command": ["sleep", "3600"]}
    make_service(
        f"{stage}api",
        "lab/busybox:1",
        env=["A=stage-secret", "B=1"],
        mode=ServiceMode("replicated", 1),
        **common,
    )
    make_service(
        f"{prod}api",
        "lab/busybox:1",
        env=["A=prod-secret", "C=1"],
        mode=ServiceMode("replicated", 2),
        **common,
    )
    make_service(f"{prod}worker", "lab/busybox:1", mode=ServiceMode("replicated", 0), **common)
    runner = CliRunner()
    res = runner.invoke(parity, ["--stage", stage, "--prod", prod, "--json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.output)
    keys = {d["key"]: d for d in doc["differences"]}
    assert set(keys) == {"api.env.B", "api.env.C", "api.replicas", "worker"}
    assert keys["api.replicas"]["stage"] == 1 and keys["api.replicas"]["prod"] == 2
    assert "secret" not in res.output  # env values are never read into the report
    res = runner.invoke(
        parity, ["--stage", stage, "--prod", prod, "--allow", "api.*", "--allow", "worker"]
    )
    assert res.exit_code == 0, res.output
    assert "4 difference(s), 0 not allowed" in res.output
