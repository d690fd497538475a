"""A dependency-free progress line for long imports (stderr, only on a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

PROGRESS_REFRESH_S = 0.25  # shortest interval between two redraws


class ProgressLine:
    """``progress(phase, rows)`` callback drawing ``\\r``-refreshed ``rows, rows/s``."""

    def __init__(self, stream: TextIO | None = None, *, label: str = "") -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._label = label
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._enabled = self._stream.isatty()
        self._drawn = False

    @property
    def enabled(self) -> bool:
        return self._enabled

    def __call__(self, phase: str, rows: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if phase != "done" and now - self._last_draw < PROGRESS_REFRESH_S:
            return
        self._last_draw = now
        elapsed = max(now - self._start, 1e-6)
        text = f"\r{self._label}{phase:<10} {rows:>12,} rows  {rows / elapsed:>10,.0f} rows/s"
        self._stream.write(text)
        self._drawn = True
        if phase == "done":
            self._stream.write("\n")
            self._drawn = False
        self._stream.flush()

    def close(self) -> None:
        """End the line (e.g. after an error) so later messages start on their own."""
        if self._enabled and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
