"""Deploy windows: a rule may deploy only in the minutes its cron expressions match
(e.g. ``"* 9-16 * * mon-fri"``, office hours), in its time zone. A push outside the
window waits, still superseded by newer pushes, and deploys when the window opens."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .cron import Cron

__all__ = ["window_hold"]


def window_hold(window: dict[str, Any] | None, now: float) -> tuple[float, str] | None:
    """None when ``now`` is inside the window; else (when it opens, why it waits)."""
    if not window:
        return None
    zone = ZoneInfo(window.get("tz") or "UTC")
    here = datetime.fromtimestamp(now, zone).replace(second=0, microsecond=0)
    crons = [Cron.parse(expr) for expr in window["cron"]]
    if any(c.matches(here) for c in crons):
        return None
    openings = [t for t in (c.next_after(here) for c in crons) if t is not None]
    if not openings:
        return now + 3600, "held: the deploy window never opens; check the rule's window"
    opens = min(openings)
    shown = opens.strftime("%Y-%m-%d %H:%M %Z")
    return opens.timestamp(), f"held: outside the deploy window until {shown}"
