"""A cached view of services labelled for zero-config deploys, refreshed in the background
so that intake never waits on the Docker engine."""

from __future__ import annotations

import asyncio
import logging

from .executors.swarm import DockerConnection, list_labelled_services
from .planner import LabelledService

__all__ = ["ServiceIndex"]

log = logging.getLogger("autodock.discovery")


class ServiceIndex:
    def __init__(self, connection: DockerConnection | None, interval: float = 5.0):
        self.connection = connection
        self.interval = interval
        self.services: list[LabelledService] = []
        self.healthy = False

    async def refresh(self) -> None:
        if self.connection is None:
            return
        try:
            self.services = await asyncio.to_thread(list_labelled_services, self.connection)
            if not self.healthy:
                log.info("service discovery: %d labelled service(s)", len(self.services))
            self.healthy = True
        except Exception as exc:
            if self.healthy:
                log.warning("service discovery failed, keeping the last list: %s", exc)
            self.healthy = False

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)
