"""Percentage, rate and ETA of a scrub on a terminal (stderr, only when it is a tty)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

REFRESH_S = 0.25  # shortest interval between two redraws


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ScrubProgress:
    """``update(done_bytes, rows)``: ``\\r``-refreshed line; silent when not a terminal."""

    def __init__(self, total_bytes: int | None, *, label: str = "",
                 stream: TextIO | None = None, force: bool = False) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._total = total_bytes if total_bytes and total_bytes > 0 else None
        self._label = label
        self._start = time.monotonic()
        self._last = 0.0
        self.enabled = force or self._stream.isatty()
        self._drawn = False

    def line(self, done_bytes: int, rows: int, now: float) -> str:
        elapsed = max(now - self._start, 1e-6)
        rate = rows / elapsed
        text = f"{self._label}{rows:>12,} rows  {rate:>9,.0f} rows/s"
        if self._total is not None:
            fraction = min(1.0, done_bytes / self._total)
            eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
            text = (f"{self._label}{fraction * 100:5.1f}%  {rows:>12,} rows  "
                    f"{rate:>9,.0f} rows/s  ETA {_clock(eta)}")
        return text

    def update(self, done_bytes: int, rows: int, *, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self._last < REFRESH_S:
            return
        self._last = now
        self._stream.write("\r" + self.line(done_bytes, rows, now))
        self._drawn = True
        if final:
            self.close()
        self._stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
