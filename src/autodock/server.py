"""Assemble and run the server: store → intake routes → worker → executors."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import uvicorn
from fastapi import FastAPI

from . import __version__
from .config import Config
from .context import AppContext
from .discovery import ServiceIndex
from .exceptions import ConfigError, StoreUnavailable
from .executors.command import CommandExecutor
from .executors.rollback import RollbackExecutor
from .executors.swarm import DockerConnection, SwarmExecutor
from .intake import app as intake_app
from .intake.auth import BasicAuthenticator
from .models import DeployRecord, DeployStatus
from .store import open_store
from .web import api
from .web.events import Broadcaster, PublishingStore
from .worker import Worker

__all__ = ["build_context", "create_app", "serve"]

log = logging.getLogger("autodock.server")


def _authenticator(config: Config) -> BasicAuthenticator | None:
    if config.auth == "none":
        return None
    if config.auth is None:
        raise ConfigError(
            "no webhook credentials configured: pass --http-auth-user/--http-auth-pass "
            "(or AUTODOCK_HTTP_AUTH_USER/AUTODOCK_HTTP_AUTH_PASS, or --http-auth-file), set "
            "'auth:' in the config, or pass --insecure-no-auth to accept anyone's webhooks"
        )
    password = config.auth.resolve_password()
    if not password:
        raise ConfigError("auth: the password is empty (check password_env/password_file)")
    return BasicAuthenticator(config.auth.username, password)


def build_context(config: Config) -> AppContext:
    events = Broadcaster()
    store = PublishingStore(open_store(config.db_target), events)  # publishes changes (SSE)
    connection = DockerConnection(config.docker_host, config.registries)
    ctx = AppContext(
        config=config,
        store=store,
        index=ServiceIndex(connection, config.discovery.refresh_seconds),
        webhook_auth=_authenticator(config),
        events=events,
    )
    executors = {
        "service": SwarmExecutor(connection, default_timeout=config.deploy_timeout),
        "command": CommandExecutor(),
        "rollback": RollbackExecutor(connection, default_timeout=config.deploy_timeout),
    }
    worker = Worker(
        store,
        executors,  # type: ignore[arg-type]
        concurrency=config.workers,
        max_attempts=config.max_attempts,
        retry_backoff=config.retry_backoff,
        exclusive_store=not config.db_target.startswith(("postgres://", "postgresql://")),
    )

    async def count(record: DeployRecord) -> None:
        ctx.metrics.deploys.labels(record.kind, str(record.status)).inc()
        if record.duration is not None:
            ctx.metrics.deploy_seconds.labels(record.kind).observe(record.duration)
        if record.status is DeployStatus.SUCCEEDED:
            ctx.metrics.last_success.labels(record.target).set(record.finished_at or 0)

    worker.listeners.append(count)
    ctx.worker = worker
    return ctx


def create_app(ctx: AppContext, *, run_worker: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if ctx.config.discovery.labels:
            await ctx.index.refresh()
            tasks.append(asyncio.create_task(ctx.index.run()))
        if run_worker and ctx.worker is not None:
            tasks.append(asyncio.create_task(ctx.worker.run()))
        try:
            yield
        finally:
            if ctx.worker is not None:
                ctx.worker.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(
        title="autodock",
        version=__version__,
        description="Continuous delivery for Docker Swarm.",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.include_router(intake_app.router)
    app.include_router(api.router)
    return app


def _lock_store(config: Config) -> IO[str] | None:
    """One server per SQLite file: the worker assumes no one else runs its deploys."""
    if config.db_target.startswith(("postgres://", "postgresql://")):
        return None
    lock_path = Path(config.db_target + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreUnavailable(
            f"another autodock server uses {config.db_target} (lock {lock_path} is held)"
        ) from None
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def serve(config: Config) -> None:
    lock = _lock_store(config)
    ctx = build_context(config)
    app = create_app(ctx)
    host, port = config.host_port
    log.info(
        "autodock %s listening on %s:%d, store %s, %d worker(s), %d rule(s)%s",
        __version__,
        host,
        port,
        config.db_target,
        config.workers,
        len(config.rules),
        " (legacy config)" if config.legacy else "",
    )
    uv = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
        limit_concurrency=1000,
        timeout_graceful_shutdown=3,  # open /api/v1/stream connections never end by themselves
    )
    try:
        uvicorn.Server(uv).run()
    finally:
        ctx.store.close()
        if lock is not None:
            lock.close()
