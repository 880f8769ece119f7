"""`autodock ci` against the real engine and a real Registry v2: Dockerfile choice, labels,
pushed digests, and the whole loop (ci all on develop → registry → autodock → stage)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from autodock.ci.cli import ci
from tests.support.ci_env import CI_PREFIXES, ci_free_env, git_checkout
from tests.support.lab import ROOT, running_images, wait_for

pytestmark = pytest.mark.e2e

PASSWORD = "pa55-never-printed"
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
APP_FILES = {
    "Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n",
    "Dockerfile.stage": "FROM scratch\nCOPY hello.txt /stage.txt\nLABEL chosen=stage\n",
    "hello.txt": "hello\n",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(CI_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
def built(docker_client) -> Iterator[list[str]]:
    """Image refs appended here are removed from the engine afterwards."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        with contextlib.suppress(Exception):
            docker_client.images.remove(ref, force=True)


def registry_digest(addr: str, repo: str, tag: str) -> str:
    r = httpx.head(
        f"http://{addr}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT}, timeout=10
    )
    assert r.status_code == 200, r
    return r.headers["Docker-Content-Digest"]


def test_build_chooses_dockerfile_and_sets_labels(
    docker_client, registry, unique, tmp_path, monkeypatch, clean_env, built
) -> None:
    sha = git_checkout(tmp_path / "app", "develop", APP_FILES)
    monkeypatch.chdir(tmp_path / "app")
    image = f"{registry.addr}/ci-{unique}/app"
    built += [f"{image}:stage", f"{image}:{sha[:7]}"]
    result = CliRunner().invoke(ci, ["build", "-i", image, "--extra-tag", "{short_sha}"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^Step 1/\d+ : FROM scratch$", result.stderr, re.M)  # progress, on stderr
    image_id = result.stdout.strip()
    assert image_id.startswith("sha256:")

    stage = docker_client.images.get(f"{image}:stage")
    assert stage.id == image_id
    assert docker_client.images.get(f"{image}:{sha[:7]}").id == image_id
    labels = stage.labels
    assert labels["chosen"] == "stage"  # Dockerfile.stage was used for tag `stage`
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.version"] == "stage"
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/team/app"
    assert labels["org.opencontainers.image.created"].endswith("Z")

    # another branch: plain Dockerfile
    built.append(f"{image}:dev-{sha[:7]}")
    other = CliRunner().invoke(ci, ["build", "-i", image, "--branch", "feature/x"])
    assert other.exit_code == 0, other.output
    assert "chosen" not in docker_client.images.get(f"{image}:dev-{sha[:7]}").labels


def test_build_failure_exits_nonzero_with_the_engine_message(
    registry, unique, tmp_path, monkeypatch, clean_env
) -> None:
    git_checkout(tmp_path / "app", "develop", {"Dockerfile": "FROM scratch\nCOPY nope /x\n"})
    monkeypatch.chdir(tmp_path / "app")
    result = CliRunner().invoke(ci, ["build", "-i", f"{registry.addr}/ci-{unique}/broken"])
    assert result.exit_code == 1, result.output
    assert "build failed" in result.output and "nope" in result.output


def test_all_pushes_and_prints_the_registry_digest(
    registry, unique, tmp_path, monkeypatch, clean_env, built
) -> None:
    sha = git_checkout(tmp_path / "app", "master", APP_FILES)
    monkeypatch.chdir(tmp_path / "app")
    repo = f"ci-{unique}/app"
    image = f"{registry.addr}/{repo}"
    built += [f"{image}:production", f"{image}:{sha}"]
    env = {"DOCKER_USER": "ci-bot", "DOCKER_PASS": PASSWORD}
    result = CliRunner().invoke(ci, ["all", "-i", image, "--extra-tag", "{sha}"], env=env)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "logged in to" in result.stderr
    pushed = dict(line.split("@", 1) for line in result.stdout.split())
    assert set(pushed) == {f"{image}:production", f"{image}:{sha}"}
    assert pushed[f"{image}:production"] == registry_digest(registry.addr, repo, "production")
    assert pushed[f"{image}:{sha}"] == registry_digest(registry.addr, repo, sha)

    # `ci push` alone pushes the same image again: same digest
    again = CliRunner().invoke(ci, ["push", "-i", image])
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == f"{image}:production@{pushed[f'{image}:production']}"


def test_push_of_a_missing_image_fails_cleanly(registry, unique, tmp_path, monkeypatch, clean_env):
    git_checkout(tmp_path / "app", "develop", APP_FILES)
    monkeypatch.chdir(tmp_path / "app")
    result = CliRunner().invoke(ci, ["push", "-i", f"{registry.addr}/ci-{unique}/never-built"])
    assert result.exit_code == 1, result.output
    assert "push of" in result.output and "failed" in result.output


def test_ci_all_on_develop_deploys_stage(
    docker_client, registry, notify_port, autodock, make_service, unique, tmp_path, built
) -> None:
    """The whole loop: a CI job on `develop` runs `autodock ci all` → the registry notifies
    autodock → autodock updates the stage service to exactly the pushed digest."""
    repo = f"ci-{unique}/app"
    image = f"{registry.addr}/{repo}"
    service = f"stage_app_{unique}"
    server = autodock(
        {
            "rules": [
                {"repo": repo, "tag": "stage", "actions": [{"service": service, "image": image}]}
            ]
        },
        port=notify_port,
    )
    # host networking: tasks then start even on an engine without its docker0 bridge
    make_service(service, "lab/busybox:1", networks=["host"], command=["sleep", "3600"])
    files = {
        "Dockerfile": "FROM lab/busybox:1\nCOPY dev.html /www/index.html\n",
        "Dockerfile.stage": "FROM lab/busybox:1\nCOPY stage.html /www/index.html\n",
        "dev.html": "dev\n",
        "stage.html": f"stage {unique}\n",
    }
    checkout = tmp_path / "app"
    git_checkout(checkout, "develop", files)
    built.append(f"{image}:stage")
    env = ci_free_env(PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    proc = subprocess.run(
        [sys.executable, "-m", "autodock.ci.cli", "all", "--image", image],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    ref, digest = proc.stdout.strip().split("@")
    assert ref == f"{image}:stage"
    assert digest == registry_digest(registry.addr, repo, "stage")

    deploys = server.wait_final(1, target=service, timeout=120)
    assert [d["status"] for d in deploys] == ["succeeded"], deploys
    assert deploys[0]["new_image"] == f"{image}:stage@{digest}"
    wait_for(
        lambda: running_images(docker_client, service) == [f"{image}:stage@{digest}"],
        timeout=60,
        what="the stage service to run the pushed digest",
    )
