"""How late the event loop runs: whether a deadline that fired was the peer's fault or ours.

A Redis socket timeout (``store.socket_timeout_s``, 0.2 s) or an audit write deadline
(``audit.write_timeout_s``, 0.2 s) measures this process's event loop as much as the
peer. When the gateway is CPU-saturated one turn of the loop can take longer than the
timeout: the reply arrived in time, but the loop read it too late, and the timer fired
first. Such a timeout says *saturated* (the decision is answered ``timeout``), not
*unreachable* (``store_unavailable``).

The evidence is a heartbeat: a timer due every :data:`HEARTBEAT_S`, which records how
late it ran. :meth:`LoopLag.late_since` adds up the lateness seen since an instant
(including the beat overdue right now): about how long the loop was unavailable. A
timeout counts as the loop's fault when that is at least half the timeout: a reply is
read two turns after it arrives, so turns of half the timeout already lose it, while a
host that merely deschedules the process for a few tens of milliseconds does not turn a
stalled peer into "saturated". One heartbeat per event loop, started by the first
:func:`loop_lag` call on that loop (the store and the audit sinks call it when a wait
starts); about 20 wake-ups a second, nothing else.

The other evidence is the peer's own: a store or sink that answered this process less
than :data:`ANSWERED_WITHIN_S` before the wait began, or during it, is up (saturated, not
down); one that has been silent for longer while the loop kept time is unavailable
(:func:`answered_recently`).

No task and no I/O: one timer handle at a time. Used by ``gateway.store.redis_conn`` and
the audit sinks to tell *saturated* from *down* when one of their deadlines fires.
"""

from __future__ import annotations

import asyncio
import collections
import weakref

HEARTBEAT_S = 0.05  # how often the heartbeat is due
HISTORY_BEATS = 256  # beats kept (about 13 s at 20 a second; a lagging loop beats less)
# A timeout counts as the loop's fault when the loop was late, in all, for this fraction
# of the timeout that fired while the wait was on (see the module docstring).
LAG_FRACTION = 0.5
# A peer that answered this process this recently (seconds before the wait began) is up:
# a timeout now is saturation (a stall shorter than this reads as `timeout`, then, once
# the peer has been silent this long, as `store_unavailable`).
ANSWERED_WITHIN_S = 1.0

_MONITORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = (
    weakref.WeakKeyDictionary())


class LoopLag:
    """The heartbeat of one event loop (see the module docstring).

    It keeps no reference to its loop (the loop's timer keeps this object alive), so a
    closed loop is collected with its heartbeat.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._beats: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=HISTORY_BEATS)  # (loop time it ran at, how late it ran)
        self._due = loop.time() + HEARTBEAT_S
        loop.call_at(self._due, self._beat)

    def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._beats.append((now, now - self._due))
        self._due = now + HEARTBEAT_S
        loop.call_at(self._due, self._beat)

    def late_since(self, since: float) -> float:
        """How late (seconds, in all) the loop ran since loop time ``since``: the beats
        that ran after it, and the beat overdue right now (a turn still running late)."""
        total = max(0.0, asyncio.get_running_loop().time() - self._due)
        for ran_at, late in reversed(self._beats):
            if ran_at < since:
                break
            total += late
        return total

    def lagged(self, since: float, timeout_s: float | None) -> bool:
        """Whether a ``timeout_s`` deadline that fired after ``since`` is explained by
        the loop running late (for :data:`LAG_FRACTION` of it, in all) meanwhile."""
        if timeout_s is None or timeout_s <= 0:
            return False
        return self.late_since(since) >= LAG_FRACTION * timeout_s


def answered_recently(last_answer: float, since: float) -> bool:
    """Whether a peer that last answered at loop time ``last_answer`` did so during a wait
    that began at ``since``, or less than :data:`ANSWERED_WITHIN_S` before it."""
    return last_answer >= since - ANSWERED_WITHIN_S


def loop_lag() -> LoopLag:
    """The running loop's heartbeat, started on first use."""
    loop = asyncio.get_running_loop()
    monitor = _MONITORS.get(loop)
    if monitor is None:
        monitor = _MONITORS[loop] = LoopLag(loop)
    return monitor
