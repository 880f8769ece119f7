"""The executor boundary: a deploy record in, a result out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from ..models import DeployRecord, DeployResult

__all__ = ["Executor", "ProgressCallback"]

ProgressCallback = Callable[[str], Awaitable[None]]


class Executor(Protocol):
    async def run(self, deploy: DeployRecord, progress: ProgressCallback) -> DeployResult:
        """Carry out the deploy. Raise TransientDeployError for a failure worth retrying;
        return a result (succeeded, failed, unchanged) for everything else."""
        ...
