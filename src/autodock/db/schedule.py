"""Clone jobs declared in ``autodock.yml`` and a scheduler that runs them on cron times.

    db_clone:
      production: ["postgresql://db.prod.internal/app", "*.prod.internal"]
      jobs:
        - name: nightly-stage
          schedule: "15 3 * * *"          # minute hour day-of-month month day-of-week
          from_env: PROD_DATABASE_URL     # or from: URL (avoid passwords in the file)
          to: postgresql://stage-db/app   # or to_env: VAR
          tables: [orders]                # optional; exclude, where, mask, schema_only too
          where: {orders: "created_at > now() - interval '30 days'"}
          mask: {users.email: fake, users.phone: "null"}

Cron is the classic five-field syntax (``*``, ``a-b``, ``*/n``, ``a-b/n``, lists, month
and weekday names, ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly``); when
both day fields are restricted a day matching either one matches, as in Vixie cron.
Times are evaluated in UTC unless ``timezone`` names an IANA zone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from ..cron import Cron, CronError
from . import CloneError
from .copy import CloneOptions, clone
from .progress import Progress
from .urls import ProductionGuard, redact

__all__ = [
    "CloneJob",
    "CloneScheduler",
    "Cron",
    "load_jobs",
    "run_job",
    "run_scheduler",
    "section_from",
]

log = logging.getLogger("autodock.db.schedule")

JOB_KEYS = {
    "name",
    "schedule",
    "from",
    "from_env",
    "to",
    "to_env",
    "schema",
    "tables",
    "exclude",
    "where",
    "mask",
    "mask_salt_env",
    "schema_only",
    "keep_old",
}


@dataclass
class CloneJob:
    name: str
    cron: Cron
    options: CloneOptions
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def section_from(config: Any) -> dict[str, Any]:
    """The ``db_clone`` section from a YAML dict, a Config object, or the section itself."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        config = getattr(config, "db_clone", None) or {}
    section = config.get("db_clone", config) if isinstance(config, dict) else {}
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise CloneError("db_clone must be a mapping")
    return section


def _url(job: dict[str, Any], key: str, name: str) -> str:
    if job.get(key):
        return str(job[key])
    env = job.get(f"{key}_env")
    if env:
        value = os.environ.get(str(env))
        if not value:
            raise CloneError(f"db_clone job {name}: environment variable {env} is not set")
        return value
    raise CloneError(f"db_clone job {name}: give {key} or {key}_env")


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def load_jobs(config: Any, *, resolve_urls: bool = True) -> list[CloneJob]:
    """Parse ``db_clone.jobs``; URLs from the environment are read now unless told not to."""
    section = section_from(config)
    jobs = section.get("jobs") or []
    if not isinstance(jobs, list):
        raise CloneError("db_clone.jobs must be a list")
    out: list[CloneJob] = []
    seen: set[str] = set()
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            raise CloneError(f"db_clone.jobs[{i}] must be a mapping")
        name = str(job.get("name") or f"job{i}")
        unknown = sorted(set(job) - JOB_KEYS)
        if unknown:
            raise CloneError(f"db_clone job {name}: unknown key(s) {', '.join(unknown)}")
        if name in seen:
            raise CloneError(f"db_clone job {name}: duplicate name")
        seen.add(name)
        if not job.get("schedule"):
            raise CloneError(f"db_clone job {name}: schedule is required")
        source = _url(job, "from", name) if resolve_urls else str(job.get("from") or "")
        target = _url(job, "to", name) if resolve_urls else str(job.get("to") or "")
        salt_env = job.get("mask_salt_env")
        options = CloneOptions.build(
            source,
            target,
            tables=_names(job.get("tables")) or None,
            exclude=_names(job.get("exclude")),
            where=job.get("where") or {},
            mask=job.get("mask") or {},
            schema=str(job.get("schema") or "public"),
            schema_only=bool(job.get("schema_only", False)),
            keep_old=bool(job.get("keep_old", False)),
            mask_salt=os.environ.get(str(salt_env)) if salt_env else None,
        )
        try:
            cron = Cron.parse(str(job["schedule"]))
        except CronError as exc:
            raise CloneError(f"db_clone job {name}: {exc}") from None
        out.append(CloneJob(name, cron, options, dict(job)))
    return out


def run_job(
    job: CloneJob, guard: ProductionGuard, progress: Progress | None = None
) -> dict[str, Any]:
    """Run one job now; never raises: failures become ``status: failed`` records."""
    progress = progress or Progress(emit=lambda line: log.info("[%s] %s", job.name, line))
    started = time.time()
    t0 = time.monotonic()
    record: dict[str, Any] = {"job": job.name, "started_at": started}
    try:
        result = clone(job.options, guard=guard, progress=progress)
        record.update(result.to_dict())
    except Exception as exc:
        log.exception("clone job %s failed", job.name)
        record.update(
            status="failed",
            error=str(exc),
            source=redact(job.options.source),
            target=redact(job.options.target),
        )
    record.update(
        job=job.name,
        started_at=started,
        finished_at=time.time(),
        duration_s=round(time.monotonic() - t0, 3),
    )
    return record


Runner = Callable[[CloneJob, ProductionGuard], dict[str, Any]]


class CloneScheduler:
    """Runs due clone jobs, one at a time, once per matching minute.

    ``clock`` returns epoch seconds and ``sleep`` waits (both injectable, for tests and
    for ``autodock serve``); ``on_result`` receives each run's record.
    """

    def __init__(
        self,
        jobs: Iterable[CloneJob],
        guard: ProductionGuard | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        runner: Runner = run_job,
        on_result: Callable[[dict[str, Any]], Any] | None = None,
        timezone: tzinfo = UTC,
    ):
        self.jobs = list(jobs)
        self.guard = guard or ProductionGuard()
        self.clock = clock
        self.sleep = sleep
        self.runner = runner
        self.on_result = on_result
        self.timezone = timezone
        self.results: list[dict[str, Any]] = []
        self._last_run: dict[str, datetime] = {}
        self._stopping = asyncio.Event()

    @classmethod
    def from_config(cls, config: Any, **kw: Any) -> CloneScheduler:
        section = section_from(config)
        tz = section.get("timezone")
        if tz:
            kw.setdefault("timezone", ZoneInfo(str(tz)))
        return cls(load_jobs(section), ProductionGuard.from_config(section), **kw)

    def _minute(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, self.timezone).replace(second=0, microsecond=0)

    def due(self, now: float) -> list[CloneJob]:
        """Jobs whose schedule matches the minute of ``now`` and that have not run in it."""
        minute = self._minute(now)
        return [
            j for j in self.jobs if j.cron.matches(minute) and self._last_run.get(j.name) != minute
        ]

    async def run_due(self) -> list[dict[str, Any]]:
        now = self.clock()
        records = []
        for job in self.due(now):
            minute = self._minute(now)
            self._last_run[job.name] = minute
            record = await asyncio.to_thread(self.runner, job, self.guard)
            # The clock may be injected (tests, replays): record the slot it chose as well
            # as the wall-clock timings the runner measured.
            record["scheduled_for"] = minute.isoformat()
            self.results.append(record)
            records.append(record)
            if self.on_result is not None:
                outcome = self.on_result(record)
                if asyncio.iscoroutine(outcome):
                    await outcome
        return records

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, iterations: int | None = None) -> None:
        """Loop until ``stop()`` (or for ``iterations`` ticks): run due jobs, sleep a minute."""
        done = 0
        while not self._stopping.is_set() and (iterations is None or done < iterations):
            await self.run_due()
            done += 1
            now = self.clock()
            await self.sleep(max(0.5, 60 - now % 60 + 0.05))


async def run_scheduler(
    config: Any,
    clock: Callable[[], float] = time.time,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    on_result: Callable[[dict[str, Any]], Any] | None = None,
) -> None:
    """Entry point for ``autodock serve``: run the config's clone jobs until cancelled."""
    scheduler = CloneScheduler.from_config(config, clock=clock, sleep=sleep, on_result=on_result)
    if not scheduler.jobs:
        return
    log.info("clone scheduler: %d job(s)", len(scheduler.jobs))
    await scheduler.run()
