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
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

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

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
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


def _field(text: str, lo: int, hi: int, names: list[str] | None, what: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else None
        if step_text and (step is None or step == 0):
            raise CloneError(f"cron {what}: bad step in {part!r}")

        def value(tok: str) -> int:
            tok = tok.strip().lower()
            if names and tok[:3] in names and not tok.isdigit():
                return names.index(tok[:3]) + (1 if what == "month" else 0)
            if not tok.isdigit():
                raise CloneError(f"cron {what}: {tok!r} is not a number")
            return int(tok)

        if rng == "*":
            start, end = lo, hi
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = value(a), value(b)
        else:
            start = end = value(rng)
            if step:
                end = hi
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise CloneError(f"cron {what}: {part!r} is outside {lo}-{hi}")
        out.update(range(start, end + 1, step or 1))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression, matched against whole minutes."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        expr = MACROS.get(text.strip().lower(), text)
        parts = expr.split()
        if len(parts) != 5:
            raise CloneError(f"cron {text!r}: expected 5 fields (min hour dom month dow)")
        weekdays = _field(parts[4], 0, 7, DAYS, "day-of-week")
        return cls(
            text,
            _field(parts[0], 0, 59, None, "minute"),
            _field(parts[1], 0, 23, None, "hour"),
            _field(parts[2], 1, 31, None, "day-of-month"),
            _field(parts[3], 1, 12, MONTHS, "month"),
            frozenset(d % 7 for d in weekdays),
            parts[2] == "*",
            parts[4] == "*",
        )

    def matches(self, when: datetime) -> bool:
        return (
            when.minute in self.minutes
            and when.hour in self.hours
            and when.month in self.months
            and self._day_ok(when)
        )

    def _day_ok(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        return (dom and dow) if (self.any_day or self.any_weekday) else (dom or dow)

    def next_after(self, when: datetime, limit_days: int = 366 * 5) -> datetime | None:
        """The first matching minute after ``when`` (None if none within ``limit_days``)."""
        t = when.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = t + timedelta(days=limit_days)
        while t < end:
            if t.month not in self.months or not self._day_ok(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        return None


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
        out.append(CloneJob(name, Cron.parse(str(job["schedule"])), options, dict(job)))
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
