"""Clone progress: a live line on a terminal, plain lines in logs and pipes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "human_bytes"]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Counts rows and bytes per table and reports them.

    On a tty the current table's line is redrawn at most ten times a second. Otherwise
    (CI logs, the scheduler inside ``autodock serve``) ``emit`` gets one line when a
    table starts being slow, every ``interval`` seconds, and when it finishes.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        emit: Callable[[str], None] | None = None,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        enabled: bool = True,
    ):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.emit = emit or self._write_line
        self.interval = 0.1 if self.tty else interval
        self.clock = clock
        self.enabled = enabled
        self.table = ""
        self.expected = 0
        self.rows = self.bytes = 0
        self.total_rows = self.total_bytes = 0
        self._started = self._table_started = self._last = clock()

    def _write_line(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def start_table(self, name: str, expected_rows: int = 0) -> None:
        self.table, self.expected = name, expected_rows
        self.rows = self.bytes = 0
        self._table_started = self._last = self.clock()

    def advance(self, rows: int, nbytes: int) -> None:
        self.rows += rows
        self.bytes += nbytes
        self.total_rows += rows
        self.total_bytes += nbytes
        now = self.clock()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self._report(final=False)

    def finish_table(self) -> float:
        seconds = self.clock() - self._table_started
        if self.enabled:
            self._report(final=True)
        return seconds

    def _line(self) -> str:
        took = max(self.clock() - self._table_started, 1e-6)
        pct = f" ({min(100, 100 * self.rows // self.expected)}%)" if self.expected > 0 else ""
        return (
            f"{self.table}: {self.rows:,} rows{pct}, {human_bytes(self.bytes)}, "
            f"{self.rows / took:,.0f} rows/s, {human_bytes(self.bytes / took)}/s"
        )

    def _report(self, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + self._line() + ("\n" if final else ""))
            self.stream.flush()
        else:
            self.emit(("copied " if final else "copying ") + self._line())

    def message(self, text: str) -> None:
        if self.enabled:
            self.emit(text)

    def summary(self) -> str:
        took = max(self.clock() - self._started, 1e-6)
        return (
            f"{self.total_rows:,} rows, {human_bytes(self.total_bytes)} in {took:.1f}s "
            f"({self.total_rows / took:,.0f} rows/s)"
        )
