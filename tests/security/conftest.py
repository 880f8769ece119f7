"""In-process apps for security tests: ``create_app(build_context(config))`` on a temp
SQLite store, no worker, no Docker, driven through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autodock.config import Config
from tests.support.hooks import CATCH_ALL_RULES, Harness


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**config: Any) -> Harness:
        data: dict[str, Any] = {
            "db": str(tmp_path / f"store-{len(made)}.db"),
            "discovery": {"labels": False},
            "rules": CATCH_ALL_RULES,
        }
        data.update(config)
        h = Harness(Config.model_validate(data))
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()
