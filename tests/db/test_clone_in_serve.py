"""A clone job declared in autodock.yml runs inside `autodock serve` as a queued deploy:
recorded in history like any deploy (and so notified like one)."""

from __future__ import annotations

import pytest

from tests.support.postgres import seed_shop

pytestmark = pytest.mark.e2e


def test_scheduled_clone_runs_as_a_recorded_deploy(autodock, dbs):
    seed_shop(dbs.prod, users=20, orders=30)
    server = autodock(
        {
            "discovery": {"labels": False},
            "db_clone": {
                "production": [dbs.prod],
                "jobs": [
                    {
                        "name": "nightly",
                        "schedule": "* * * * *",  # due in the minute the server starts
                        "from": dbs.prod,
                        "to": dbs.stage,
                        "tables": ["orders"],
                        "mask": {"users.email": "hash"},
                    }
                ],
            },
        }
    )
    (deploy,) = server.wait_final(1, timeout=90, target="db:nightly")
    assert deploy["status"] == "succeeded", deploy
    assert deploy["rule"] == "db_clone:nightly" and "rows" in deploy["output"]
    assert dbs.sql(dbs.stage, "SELECT count(*) FROM orders") == [(30,)]
    emails = [r[0] for r in dbs.sql(dbs.stage, "SELECT email FROM users")]
    assert emails and not any("real-mail.example" in e for e in emails), emails[:3]
