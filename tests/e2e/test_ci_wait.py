"""`autodock ci wait` exit codes against a real server and a real swarm."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def ci_wait(server, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "autodock.cli",
        "ci",
        "wait",
        "--url",
        server.url,
        "--interval",
        "0.3",
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def test_ci_wait_reports_success_failure_and_timeout(
    registry, images, autodock, make_service, unique
):
    repo, svc = f"e2e/wait-{unique}", f"wait_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    server = autodock(
        {
            "discovery": {"labels": False},
            "rules": [{"repo": repo, "tag": "stage", "services": [svc]}],
        }
    )

    good = images.publish(repo, "stage")
    body = {"repo": repo, "tag": "stage", "registry": registry.addr, "digest": good}
    assert server.post("/hooks/generic", body).status_code == 202
    ok = ci_wait(server, "--repo", repo, "--tag", "stage", "--digest", good)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"{registry.addr}/{repo}:stage@{good}"

    bad = images.publish(repo, "stage", cmd=["/bin/sh", "-c", "exit 3"])
    body["digest"] = bad
    assert server.post("/hooks/generic", body).status_code == 202
    failed = ci_wait(server, "--repo", repo, "--tag", "stage", "--digest", bad, timeout=120)
    assert failed.returncode == 1, failed.stderr
    assert "failed" in failed.stderr and "exit code 3" in failed.stderr, failed.stderr

    never = ci_wait(
        server, "--repo", repo, "--tag", "stage", "--digest", "sha256:" + "0" * 64, "--timeout", "2"
    )
    assert never.returncode == 7 and "timed out" in never.stderr


def test_ci_wait_says_when_no_rule_deploys_the_push(autodock, unique):
    server = autodock(
        {
            "discovery": {"labels": False},
            "rules": [{"repo": "held/*", "tag": "*", "command": ["true"]}],
        }
    )
    assert (
        server.post("/hooks/generic", {"repo": f"other/{unique}", "tag": "x"}).json()["status"]
        == "ignored"
    )
    r = ci_wait(server, "--repo", f"other/{unique}", "--tag", "x", "--timeout", "2")
    assert r.returncode == 7 and "pending" in r.stderr
