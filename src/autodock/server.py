"""Assemble and run the server: store → intake routes → worker → executors."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import uvicorn
from fastapi import FastAPI

from . import __version__
from .config import BasicAuth, Config
from .context import AppContext
from .discovery import ServiceIndex
from .exceptions import ConfigError, StoreUnavailable
from .executors.clone import CloneExecutor, enqueue_clone
from .executors.command import PRIVATE_ENV_NAMES, CommandExecutor
from .executors.rollback import RollbackExecutor
from .executors.swarm import DockerConnection, SwarmExecutor
from .intake import app as intake_app
from .intake.auth import BasicAuthenticator
from .intake.guard import ApiGate, WebhookGuard, secret_env_names
from .intake.parsers import PARSERS
from .models import DeployRecord, DeployStatus
from .notify import api as notify_api
from .notify import slack_actions
from .notify.outbox import attach_outbox
from .store import open_store
from .web import api, approvals, push_status
from .web.events import Broadcaster, PublishingStore
from .worker import Worker

__all__ = ["build_context", "create_app", "serve"]

log = logging.getLogger("autodock.server")


def _authenticator(config: Config) -> BasicAuthenticator | None:
    """Kept for callers of ``ctx.webhook_auth``; intake/guard.py enforces every auth mode."""
    if not isinstance(config.auth, BasicAuth):
        return None
    password = config.auth.resolve_password()
    if not password:
        raise ConfigError("auth: the password is empty (check password_env/password_file)")
    return BasicAuthenticator(config.auth.username, password)


def build_context(config: Config) -> AppContext:
    guard = WebhookGuard(config, PARSERS)  # refuses a config that leaves an endpoint open
    PRIVATE_ENV_NAMES.update(secret_env_names(config))  # commands never see them
    events = Broadcaster()
    store = PublishingStore(open_store(config.db_target), events)  # publishes changes (SSE)
    connection = DockerConnection(config.docker_host, config.registries)
    ctx = AppContext(
        config=config,
        store=store,
        index=ServiceIndex(connection, config.discovery.refresh_seconds),
        webhook_auth=_authenticator(config),
        guard=guard,
        events=events,
    )
    executors = {
        "service": SwarmExecutor(connection, default_timeout=config.deploy_timeout),
        "command": CommandExecutor(),
        "clone": CloneExecutor(config.db_clone),
        "rollback": RollbackExecutor(connection, default_timeout=config.deploy_timeout),
    }
    worker = Worker(
        store,
        executors,  # type: ignore[arg-type]
        concurrency=config.workers,
        max_attempts=config.max_attempts,
        lease_seconds=config.lease_seconds,
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
    ctx.outbox = attach_outbox(ctx, worker)
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
        if run_worker and ctx.outbox is not None:
            tasks.append(asyncio.create_task(ctx.outbox.run()))
        if run_worker and ctx.config.proxy.enabled:
            tasks.append(asyncio.create_task(_run_proxy_sync(ctx)))
        if run_worker and ctx.config.db_clone:
            tasks.append(asyncio.create_task(_run_clone_schedule(ctx)))
        try:
            yield
        finally:
            if ctx.worker is not None:
                ctx.worker.stop()
            if ctx.outbox is not None:
                ctx.outbox.stop()
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
    app.add_middleware(ApiGate)  # /api and /metrics: webhooks.endpoints.api, when configured
    app.include_router(intake_app.router)
    app.include_router(api.router)
    app.include_router(notify_api.router)
    app.include_router(push_status.router)
    app.include_router(approvals.router)
    app.include_router(slack_actions.router)
    return app


async def _run_proxy_sync(ctx: AppContext) -> None:
    """Services appear, change or go: the proxy's nginx config follows their labels."""
    from .proxy.sync import ProxySync

    connection = ctx.index.connection
    assert connection is not None
    settings = ctx.config.proxy
    sync = ProxySync(
        lambda: connection.client, proxy_service=settings.service, interval=settings.interval
    )
    await sync.run()


async def _run_clone_schedule(ctx: AppContext) -> None:
    """Due clone jobs become queued deploys of kind ``clone`` (see executors/clone.py)."""
    from .db.schedule import CloneScheduler

    def enqueue(job: Any, guard: Any) -> dict[str, Any]:
        result = enqueue_clone(ctx.store, job.name)
        if ctx.worker is not None:
            ctx.worker.wake()
        return result

    scheduler = CloneScheduler.from_config(ctx.config.db_clone, runner=enqueue)
    if scheduler.jobs:
        log.info("clone schedule: %s", ", ".join(j.name for j in scheduler.jobs))
        await scheduler.run()


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
        "autodock %s listening on %s://%s:%d, store %s, %d worker(s), %d rule(s)%s",
        __version__,
        "https" if config.tls_cert else "http",
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
        proxy_headers=False,  # X-Forwarded-For is believed only from webhooks.trusted_proxies
        ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
        ssl_keyfile=str(config.tls_key) if config.tls_key else None,
        timeout_graceful_shutdown=3,  # open /api/v1/stream connections never end by themselves
    )
    try:
        uvicorn.Server(uv).run()
    finally:
        ctx.store.close()
        if lock is not None:
            lock.close()
