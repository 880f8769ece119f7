"""Session fixtures for tests against real infrastructure (see tests/support/lab.py)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lab import (
    AutodockServer,
    Images,
    Registry,
    create_service,
    ensure_lab,
    free_port,
    start_registry,
)

ARTIFACTS = Path(
    os.environ.get("AUTODOCK_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)


@pytest.fixture(scope="session")
def docker_client():
    client = ensure_lab()
    yield client
    client.close()


@pytest.fixture(scope="session")
def notify_port() -> int:
    """The port the session's registry notifies; registry-driven tests run autodock on it."""
    return free_port()


@pytest.fixture(scope="session")
def registry(docker_client, tmp_path_factory, notify_port) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp("registry"), notify_port)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def images(docker_client, registry) -> Images:
    return Images(docker_client, registry.addr)


@pytest.fixture
def unique() -> str:
    """A short unique suffix, so tests never share repos or service names."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def services(docker_client) -> Iterator[list[str]]:
    """Names appended here are removed after the test."""
    created: list[str] = []
    yield created
    for name in created:
        with contextlib.suppress(Exception):
            docker_client.services.get(name).remove()


@pytest.fixture
def make_service(docker_client, services):
    def make(name: str, image: str, **kw):
        svc = create_service(docker_client, name, image, **kw)
        services.append(name)
        return svc

    return make


@pytest.fixture
def autodock(tmp_path) -> Iterator:
    """Factory: ``autodock(config, port=None)`` starts a server process; stopped afterwards."""
    started: list[AutodockServer] = []

    def start(config: dict, port: int | None = None, env: dict | None = None) -> AutodockServer:
        workdir = tmp_path / f"autodock-{len(started)}"
        workdir.mkdir()
        server = AutodockServer(port or free_port(), workdir, config, env=env or {})
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{tmp_path.name}-{server.workdir.name}.log").write_text(server.log())
