"""A throwaway PostgreSQL cluster for the test session (``initdb`` + ``pg_ctl``).

Fixtures (registered by ``pytest_plugins`` in tests/conftest.py):

* ``postgres_cluster`` (session): the running cluster, torn down after the session.
* ``postgres_url`` (function): a fresh, empty database in it, as a ``postgresql://`` URL.

initdb refuses to run as root, so under root the cluster runs as the ``postgres`` user
(``runuser``) in a directory it owns. The server binaries come from
``/usr/lib/postgresql/<version>/bin`` (Debian's ``postgresql`` package, installed by
scripts/setup.sh) or ``$AUTODOCK_TEST_PG_BIN``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.lab import free_port, wait_for

__all__ = ["PostgresCluster", "postgres_cluster", "postgres_url", "start_cluster"]


def _bin_dir() -> Path:
    if os.environ.get("AUTODOCK_TEST_PG_BIN"):
        return Path(os.environ["AUTODOCK_TEST_PG_BIN"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb); "
            "run scripts/setup.sh or set AUTODOCK_TEST_PG_BIN"
        )
    return Path(found[-1]).parent


@dataclass
class PostgresCluster:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, *argv: str | Path) -> list[str]:
        cmd = [str(a) for a in argv]
        return ["runuser", "-u", self.run_as, "--", *cmd] if self.run_as else cmd

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._cmd(self.bin_dir / "pg_ctl", "-D", self.data, *args),
            check=check,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.pg_ctl("stop", "-m", "immediate", "-w", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> PostgresCluster:
    bin_dir = _bin_dir()
    run_as = "postgres" if os.geteuid() == 0 else None
    # Not under pytest's tmp dirs: those are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="autodock-pg-", dir="/tmp" if run_as else None))
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(root, user.pw_uid, user.pw_gid)
    cluster = PostgresCluster(bin_dir, root, free_port(), run_as)
    try:
        subprocess.run(
            cluster._cmd(
                bin_dir / "initdb",
                "-D",
                cluster.data,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={cluster.port}",
                f"-c unix_socket_directories={cluster.root}",
                "-c max_connections=300",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=32MB",
            ]
        )
        cluster.pg_ctl("start", "-w", "-t", "60", "-l", str(cluster.log), "-o", options)
        wait_for(lambda: _accepts(cluster), timeout=30, what="postgres to accept connections")
    except BaseException as exc:
        log = cluster.log.read_text(errors="replace") if cluster.log.exists() else ""
        detail = getattr(exc, "stderr", "") or ""
        cluster.stop()
        raise RuntimeError(f"cannot start a test PostgreSQL: {exc}\n{detail}\n{log}") from exc
    return cluster


def _accepts(cluster: PostgresCluster) -> bool:
    import psycopg

    try:
        with psycopg.connect(cluster.url(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh empty database per test (left for the cluster's teardown to discard)."""
    return postgres_cluster.create_database()
