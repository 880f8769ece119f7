"""Roll a Swarm service back to its previous spec (``docker service rollback``).

docker-py 7.1 has no rollback flag on ``update_service``, so this posts the Engine's
``/services/{id}/update?rollback=previous`` through the SDK's low-level client, then
waits (like a deploy) until every task runs the previous image.
"""

from __future__ import annotations

import asyncio
from typing import Any

import docker
import docker.errors

from ..exceptions import DeployError, TransientDeployError
from ..models import DeployRecord, DeployResult, DeployStatus
from ..reference import short_digest
from .base import ProgressCallback
from .swarm import SwarmExecutor, _digest_of, _engine_call

__all__ = ["RollbackExecutor", "previous_image"]


def previous_image(service: dict[str, Any]) -> str | None:
    """The image a rollback would return to, or None when there is no previous spec."""
    previous = service.get("PreviousSpec") or {}
    return ((previous.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image")


class RollbackExecutor(SwarmExecutor):
    """Deploy kind ``rollback``: ``action = {"service": NAME}``."""

    async def run(self, deploy: DeployRecord, progress: ProgressCallback) -> DeployResult:
        name = deploy.action["service"]
        try:
            service = await asyncio.to_thread(self._inspect, name)
        except docker.errors.NotFound:
            return DeployResult(DeployStatus.FAILED, error=f"service {name!r} not found in swarm")
        current = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Image")
        target = previous_image(service)
        if target is None:
            return DeployResult(
                DeployStatus.FAILED,
                old_image=current,
                error=f"service {name!r} has no previous spec to roll back to",
            )
        await progress(
            f"rolling back {name}: {short_digest(_digest_of(current))} → "
            f"{short_digest(_digest_of(target))}"
        )
        previous_status = (service.get("UpdateStatus") or {}).get("StartedAt")
        await asyncio.to_thread(self._rollback, service)
        timeout = float(deploy.action.get("timeout") or self.default_timeout)
        outcome = await self._wait(
            service["ID"], name, target, previous_status, timeout, progress, rollback=True
        )
        outcome.old_image, outcome.new_image = current, target
        return outcome

    def _rollback(self, service: dict[str, Any]) -> None:
        def call(c: docker.DockerClient) -> Any:
            api = c.api
            url = api._url("/services/{0}/update", service["ID"])
            params = {"version": service["Version"]["Index"], "rollback": "previous"}
            return api._result(api._post_json(url, data=service["Spec"], params=params), True)

        try:
            _engine_call(self.conn, call)
        except docker.errors.APIError as exc:
            if exc.status_code == 409 or "out of sequence" in str(exc):
                raise TransientDeployError(f"service changed during rollback: {exc}") from exc
            raise DeployError(f"rollback rejected: {exc.explanation or exc}") from exc
