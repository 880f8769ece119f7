"""Fixtures for fault tests: an engine of the test's own that may be stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.engine import ThrowawayEngine


@pytest.fixture(scope="module")
def engine(docker_client) -> Iterator[ThrowawayEngine]:
    eng = ThrowawayEngine()
    try:
        eng.start()
    except BaseException:
        eng.destroy()
        raise
    yield eng
    eng.destroy()
