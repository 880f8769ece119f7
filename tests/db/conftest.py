"""A real PostgreSQL server for the db tests: one throwaway cluster per session and a
fresh pair of databases (production, stage) per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from tests.support.postgres import PgCluster


@dataclass
class DbPair:
    cluster: PgCluster
    prod_name: str
    stage_name: str

    @property
    def prod(self) -> str:
        return self.cluster.url(self.prod_name)

    @property
    def stage(self) -> str:
        return self.cluster.url(self.stage_name)

    def sql(self, url: str, statement: str, params=None) -> list[tuple]:
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture
def dbs(pg_cluster) -> Iterator[DbPair]:
    pair = DbPair(
        pg_cluster, pg_cluster.create_database("prod"), pg_cluster.create_database("stage")
    )
    yield pair
    pg_cluster.drop_database(pair.prod_name)
    pg_cluster.drop_database(pair.stage_name)
