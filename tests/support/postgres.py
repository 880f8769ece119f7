"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb + pg_ctl in a temp dir.

It never relies on the distribution's default cluster: CI machines only have the
binaries (scripts/setup.sh installs ``postgresql``). initdb refuses to run as root, so
as root the cluster belongs to the ``postgres`` system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHOP_SCHEMA", "PgCluster", "find_bindir", "seed_shop", "start_cluster"]

SUPERUSER = "postgres"


def find_bindir() -> Path:
    env = os.environ.get("AUTODOCK_PG_BINDIR")
    candidates = [Path(env)] if env else []
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        candidates += sorted(base.glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for path in candidates:
        if (path / "initdb").exists():
            return path
    raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    root: Path
    port: int
    bindir: Path
    run_as: str | None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _argv(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else argv

    def create_database(self, prefix: str = "db") -> str:
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        subprocess.run(
            self._argv([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "stop"])
            + ["-m", "immediate"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> PgCluster:
    bindir = find_bindir()
    run_as = SUPERUSER if os.geteuid() == 0 else None
    # Not pytest's tmp_path: that lives under a 0700 directory the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="autodock-pg-"))
    if run_as:
        pw = pwd.getpwnam(run_as)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    cluster = PgCluster(root, port, bindir, run_as)
    data = root / "data"
    subprocess.run(
        cluster._argv(
            [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"]
            + ["--locale=C.UTF-8", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{root}'",
        # A test cluster: durability is not the point, speed on a shared 2-core box is.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "50",
        "shared_buffers": "64MB",
    }
    with (data / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
    proc = subprocess.run(
        cluster._argv(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "start"]
        ),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {proc.stderr}\n{log}")
    return cluster


SHOP_SCHEMA = """
CREATE TYPE tier AS ENUM ('free', 'pro');
CREATE TABLE users (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    full_name varchar(60),
    phone text,
    tier tier NOT NULL DEFAULT 'free',
    referrer_id int REFERENCES users(id),
    profile jsonb
);
CREATE TABLE products (
    id int PRIMARY KEY,
    name text NOT NULL CHECK (name <> ''),
    price numeric(10, 2) NOT NULL
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id int NOT NULL REFERENCES users(id),
    status text NOT NULL,
    total numeric(10, 2) NOT NULL,
    total_cents bigint GENERATED ALWAYS AS ((total * 100)::bigint) STORED,
    note json
);
CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders(id),
    product_id int NOT NULL REFERENCES products(id),
    qty int NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE TABLE audit_log (id serial PRIMARY KEY, message text NOT NULL);
CREATE INDEX orders_status_idx ON orders (status) WHERE status <> 'done';
"""


def seed_shop(url: str, users: int = 50, orders: int = 200) -> None:
    """A small shop: users with referral chains, orders, items, products, an audit log."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SHOP_SCHEMA)
        conn.execute(
            "INSERT INTO users (email, full_name, phone, tier, referrer_id, profile) "
            "SELECT 'person' || g || '@real-mail.example', 'Real Person ' || g, "
            "'+49 170 ' || lpad(g::text, 6, '0'), "
            "CASE WHEN g %% 3 = 0 THEN 'pro' ELSE 'free' END::tier, "
            "CASE WHEN g > 1 THEN g - 1 END, jsonb_build_object('n', g) "
            "FROM generate_series(1, %s) g",
            [users],
        )
        conn.execute(
            "INSERT INTO products SELECT g, 'product ' || g, g * 1.5 FROM generate_series(1, 20) g"
        )
        conn.execute(
            "INSERT INTO orders (user_id, status, total, note) "
            "SELECT 1 + g %% %s, CASE WHEN g %% 4 = 0 THEN 'open' ELSE 'done' END, g, "
            '\'{"tab": "a\\tb"}\' FROM generate_series(1, %s) g',
            [users, orders],
        )
        conn.execute(
            "INSERT INTO order_items SELECT o.id, 1 + o.id % 20, 1 + o.id % 3 FROM orders o"
        )
        conn.execute(
            "INSERT INTO audit_log (message) SELECT 'event ' || g FROM generate_series(1, 30) g"
        )
