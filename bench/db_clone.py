"""Benchmark: rows/s of `autodock db clone` vs `pg_dump -Fc | pg_restore` on the same tables.

    python bench/db_clone.py [--rows 200000] [--repeat 1]

Starts a throwaway PostgreSQL cluster (tests/support/postgres.py), generates two related
tables (users, orders) with about ``--rows`` rows in total, then copies them into two
empty databases: once with autodock (a subprocess, as a user would run it), once with
pg_dump piped into pg_restore (argv pipelines, no shell). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import psycopg  # noqa: E402

from tests.support.postgres import start_cluster  # noqa: E402

__all__ = ["main"]

DATASET = """
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, name text, created timestamptz);
CREATE TABLE orders (
    id bigint PRIMARY KEY, user_id int NOT NULL REFERENCES users(id),
    total numeric(12, 2), status text, payload jsonb
);
INSERT INTO users SELECT g, 'user' || g || '@example.com', 'User ' || g,
    now() - g * interval '1 minute' FROM generate_series(1, %(users)s) g;
INSERT INTO orders SELECT g, 1 + g %% %(users)s, (g %% 1000) / 7.0,
    (ARRAY['open', 'paid', 'shipped'])[1 + g %% 3], jsonb_build_object('n', g, 'tag', 'x' || g)
    FROM generate_series(1, %(orders)s) g;
"""


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    users = max(1, args.rows // 10)
    orders = args.rows - users
    cluster = start_cluster()
    try:
        src = cluster.url(cluster.create_database("bench_src"))
        dst_autodock = cluster.url(cluster.create_database("bench_autodock"))
        dst_pgdump = cluster.url(cluster.create_database("bench_pgdump"))
        with psycopg.connect(src, autocommit=True) as conn:
            for statement in DATASET.split(";"):
                if statement.strip():
                    conn.execute(statement, {"users": users, "orders": orders})
            conn.execute("ANALYZE")
        env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        }
        autodock_argv = [sys.executable, "-m", "autodock.db.cli", "clone", "--from", src, "--to",
                         dst_autodock, "--quiet", "--json", "--config", os.devnull]  # fmt: skip

        def run_autodock() -> None:
            subprocess.run(autodock_argv, check=True, env=env, capture_output=True)

        def run_pgdump() -> None:
            dump = subprocess.Popen(
                [str(cluster.bindir / "pg_dump"), "-Fc", "-t", "public.users", "-t",
                 "public.orders", "--dbname", src],
                stdout=subprocess.PIPE,
            )  # fmt: skip
            restore = subprocess.run(
                [str(cluster.bindir / "pg_restore"), "--no-owner", "--dbname", dst_pgdump],
                stdin=dump.stdout,
                capture_output=True,
            )
            assert dump.stdout is not None
            dump.stdout.close()
            if dump.wait() != 0 or restore.returncode != 0:
                raise RuntimeError(f"pg_dump | pg_restore failed: {restore.stderr.decode()}")

        autodock_s = _timed(run_autodock)
        pgdump_s = _timed(run_pgdump)
        counts = []
        for url in (src, dst_autodock, dst_pgdump):
            with psycopg.connect(url) as conn:
                counts.append(
                    conn.execute(
                        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM orders)"
                    ).fetchone()[0]
                )
        if len(set(counts)) != 1:
            raise RuntimeError(f"row counts differ: {counts}")
        rows = counts[0]
        print(
            json.dumps(
                {
                    "rows": rows,
                    "tables": ["users", "orders"],
                    "autodock_db_clone": {
                        "seconds": round(autodock_s, 3),
                        "rows_per_s": round(rows / autodock_s),
                    },
                    "pg_dump_pg_restore": {
                        "seconds": round(pgdump_s, 3),
                        "rows_per_s": round(rows / pgdump_s),
                    },
                    "speed_ratio": round(pgdump_s / autodock_s, 2),
                    "note": "both build keys; autodock also swaps schemas atomically",
                },
                indent=2,
            )
        )
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
