"""Five-field cron expressions, matched against whole minutes. Used for clone schedules
and deploy windows.

Classic syntax: ``*``, ``a-b``, ``*/n``, ``a-b/n``, lists, month and weekday names,
``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly``. When both day fields are
restricted, a day matching either one matches, as in Vixie cron.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Cron", "CronError"]


class CronError(ValueError):
    """A cron expression that cannot be parsed."""


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


def _field(text: str, lo: int, hi: int, names: list[str] | None, what: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else None
        if step_text and (step is None or step == 0):
            raise CronError(f"cron {what}: bad step in {part!r}")

        def value(tok: str) -> int:
            tok = tok.strip().lower()
            if names and tok[:3] in names and not tok.isdigit():
                return names.index(tok[:3]) + (1 if what == "month" else 0)
            if not tok.isdigit():
                raise CronError(f"cron {what}: {tok!r} is not a number")
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
            raise CronError(f"cron {what}: {part!r} is outside {lo}-{hi}")
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
            raise CronError(f"cron {text!r}: expected 5 fields (min hour dom month dow)")
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
