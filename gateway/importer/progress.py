"""A dependency-free progress line for long imports (stderr, only on a terminal).

``progress(phase, rows)`` redraws ``rows, rows/s``; once the importer knows the size of
the work (``fraction(phase, share)``: bytes read of the file while validating, numbers
written while importing), the line also shows the percentage and an ETA for the phase.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

PROGRESS_REFRESH_S = 0.25  # shortest interval between two redraws


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressLine:
    """``\\r``-refreshed ``phase, [percent,] rows, rows/s[, ETA]`` on a terminal."""

    def __init__(self, stream: TextIO | None = None, *, label: str = "") -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._label = label
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._enabled = self._stream.isatty()
        self._drawn = False
        self._phase = ""
        self._phase_start = self._start
        self._share: float | None = None  # of the current phase, when its size is known

    @property
    def enabled(self) -> bool:
        return self._enabled

    def _enter(self, phase: str, now: float) -> None:
        if phase != self._phase:
            self._phase = phase
            self._phase_start = now
            self._share = None

    def fraction(self, phase: str, share: float) -> None:
        """The share (0..1) of ``phase`` done: the next redraws show percent and ETA."""
        if not self._enabled:
            return
        self._enter(phase, time.monotonic())
        self._share = min(1.0, max(0.0, share))

    def line(self, phase: str, rows: int, now: float) -> str:
        elapsed = max(now - self._start, 1e-6)
        text = f"{self._label}{phase:<10} "
        if self._share is not None and phase == self._phase and phase != "done":
            spent = max(now - self._phase_start, 1e-6)
            share = self._share
            eta = spent * (1 - share) / share if share > 0 else None
            text += f"{share * 100:5.1f}%  "
            tail = f"  ETA {_clock(eta)}" if eta is not None else "  ETA -:--:--"
        else:
            tail = ""
        return text + f"{rows:>12,} rows  {rows / elapsed:>10,.0f} rows/s" + tail

    def __call__(self, phase: str, rows: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        self._enter(phase, now)
        if phase != "done" and now - self._last_draw < PROGRESS_REFRESH_S:
            return
        self._last_draw = now
        self._stream.write("\r" + self.line(phase, rows, now))
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
