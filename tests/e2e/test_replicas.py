"""Several ``autodock serve`` replicas share one PostgreSQL store (a real server, started
by tests/support/postgres.py): webhooks land on any replica, every deploy runs once, in
order per target, and a replica killed mid-deploy has its work finished by another."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.support.lab import TEST_AUTH, wait_for

pytestmark = pytest.mark.e2e

# argv: out-file repo digest; one line per run: "<repo> <digest> <pid of the replica>"
RECORD = (
    "import os,sys,time; time.sleep(float(sys.argv[4]));"
    " open(sys.argv[1],'a').write(' '.join([sys.argv[2], sys.argv[3], str(os.getppid())])+'\\n')"
)
# argv: out-file; "start <pid of the replica>", a pause, "done <same pid>"
SLOW_STEPS = (
    "import os,sys,time; p=str(os.getppid());"
    " w=lambda s: open(sys.argv[1],'a').write(s+' '+p+'\\n'); w('start'); time.sleep(3); w('done')"
)


def _config(postgres_url: str, rule: dict, **extra) -> dict:
    return {
        "db": postgres_url,
        "workers": 2,
        "discovery": {"labels": False},
        "rules": [rule],
        **extra,
    }


def test_burst_across_replicas_runs_each_deploy_once_in_order(
    autodock, postgres_url, tmp_path, unique
):
    out = tmp_path / "runs.txt"
    rule = {
        "name": "record",
        "repo": f"ha/{unique}-*",
        "tag": "*",
        "command": [
            sys.executable,
            "-c",
            RECORD,
            str(out),
            "${repository.repo_name}",
            "${digest}",
            "0.1",
        ],
    }
    replicas = [autodock(_config(postgres_url, rule)) for _ in range(3)]

    def send(i: int) -> tuple[str, str, int]:
        repo, digest = f"ha/{unique}-{i % 30}", f"sha256:{i:064x}"
        reply = replicas[i % 3].post(
            "/hooks/generic", {"repo": repo, "tag": "stage", "digest": digest}
        )
        assert reply.status_code == 202, reply.text
        assert reply.json()["status"] == "accepted"
        return repo, digest, int(reply.json()["id"])

    with ThreadPoolExecutor(12) as pool:
        acked = list(pool.map(send, range(100)))
    event_of = {digest: event_id for _, digest, event_id in acked}
    assert len(set(event_of.values())) == 100

    deploys = replicas[1].wait_final(100, timeout=120)
    assert sorted(d["event_id"] for d in deploys) == sorted(event_of.values())
    assert {d["status"] for d in deploys} <= {"succeeded", "superseded"}, deploys

    lines = [ln.split() for ln in out.read_text().splitlines()]
    runs = [(repo, digest) for repo, digest, _ in lines]
    assert len(runs) == len(set(runs)), "a (target, event) ran twice"
    succeeded = {(d["repo"], d["digest"]) for d in deploys if d["status"] == "succeeded"}
    assert set(runs) == succeeded

    per_target: dict[str, list[int]] = defaultdict(list)
    for repo, digest in runs:
        per_target[repo].append(event_of[digest])
    assert len(per_target) == 30
    for repo, order in per_target.items():
        assert order == sorted(order), f"{repo}: an older event ran after a newer one: {order}"
    # the newest push of every target ran
    newest: dict[str, int] = {}
    for repo, _, event_id in acked:
        newest[repo] = max(newest.get(repo, 0), event_id)
    assert all(order[-1] == newest[repo] for repo, order in per_target.items())

    pids = {int(pid) for _, _, pid in lines}
    assert pids <= {r.proc.pid for r in replicas}
    assert len(pids) >= 2, "one replica did all the work"


def test_killed_replica_lease_expires_and_another_finishes_the_deploy(
    autodock, postgres_url, tmp_path, unique
):
    out = tmp_path / "steps.txt"
    rule = {
        "name": "slow",
        "repo": f"ha/{unique}",
        "tag": "*",
        "actions": [{"command": [sys.executable, "-c", SLOW_STEPS, str(out)], "idempotent": True}],
    }
    config = _config(postgres_url, rule, lease_seconds=3)
    replicas = [autodock(config) for _ in range(3)]
    reply = replicas[0].post("/hooks/generic", {"repo": f"ha/{unique}", "tag": "stage"})
    assert reply.status_code == 202, reply.text
    (deploy_id,) = reply.json()["deploys"]

    def lease_owner() -> str | None:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute(
                "SELECT lease_owner FROM deploys WHERE id = %s AND status = 'running'",
                (deploy_id,),
            ).fetchone()
        return row[0] if row and row[0] else None

    owner = wait_for(lease_owner, timeout=30, what="a replica to claim the deploy")
    pid = int(owner.split(":")[1])
    (victim,) = [r for r in replicas if r.proc.pid == pid]
    wait_for(lambda: out.exists() and "start" in out.read_text(), what="the command to start")
    victim.kill9()
    killed_at = time.monotonic()

    survivors = [r for r in replicas if r is not victim]
    (final,) = survivors[0].wait_final(1, timeout=60)
    assert final["id"] == deploy_id
    assert final["status"] == "succeeded", final
    assert final["attempts"] == 2
    steps = [ln.split() for ln in out.read_text().splitlines()]
    assert steps[0] == ["start", str(pid)]
    # Commands run in their own session, so the killed replica's command may still finish
    # as an orphan (that is why only idempotent commands are run again); the deploy's
    # second run is one survivor's, start to end.
    survivor_pids = {str(r.proc.pid) for r in survivors}
    (rerun,) = [s[1] for s in steps if s[0] == "start" and s[1] in survivor_pids]
    assert ["done", rerun] in steps
    assert [s for s in steps if s[1] not in (str(pid), rerun)] == []
    assert time.monotonic() - killed_at >= 3 - 1  # not before the lease could expire


def test_intake_answers_503_while_the_database_is_unreachable(
    autodock, pg_cluster, tmp_path, unique
):
    url = pg_cluster.url(pg_cluster.create_database())
    rule = {"repo": f"ha/{unique}", "command": [sys.executable, "-c", "pass"]}
    server = autodock(_config(url, rule))
    body = {"repo": f"ha/{unique}", "tag": "stage"}
    assert server.post("/hooks/generic", body).status_code == 202
    with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    started = time.monotonic()
    reply = httpx.post(f"{server.url}/hooks/generic", json=body, auth=TEST_AUTH, timeout=30)
    assert time.monotonic() - started < 15
    assert reply.status_code == 503, reply.text
    assert reply.headers["retry-after"] == "5"
