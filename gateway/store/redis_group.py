"""Group reads and reservations: concurrent calls' store operations in one round trip.

A decision's facts read (``RedisStore.load_facts``) costs this process about 230 µs of
CPU through a redis-py pipeline of seven commands, most of it per command and per round
trip (packing, one reply parse each with its own timeout, a pool checkout), and only
about 10 µs of it is Redis's. Read with the batch read of the scrub (``READ_FACTS``, one
script call for many numbers), the same facts cost 50-70 µs per number in batches of 5 to
10 (docs/benchmarks.md, "Workers").

So, as the audit stream's group commit does for writes: a read runs at once when no
other is in flight (a lone call pays nothing more); calls that arrive while one is in
flight queue, and the next read takes all of them (up to :data:`MAX_GROUP`) in one
batch. Nothing waits on a timer; a call waits at most for the read in flight to end, so
a queued call's read takes up to two round trips (against a store that answers in 1 ms,
2 ms; one slower than half the decision budget was already failing calls).

Each call keeps its own instant (the bounds of its windows) and its own deadline: a
caller that gives up (its decision budget ran out) leaves the queue and is never read;
the store's connection-slot wait uses the latest deadline of the calls in the batch, and
the batch itself ends with it (a stalled connection holds the queue no longer than the
last caller waits). A batch function may answer an exception for one item (that caller
only gets it: one number's undecodable record does not fail its neighbours); an error of
the whole batch (the store down) is handed to each caller, then answered by its
campaign's fail mode, as for a lone read. A reservation batch asks :meth:`Group.wanted`
once it holds its connection slot and sends nothing for a caller that gave up meanwhile
(its call was answered ``BLOCK timeout``: an attempt counted for it would never be given
back). When the store closes, the calls still queued get ``StoreUnavailable``.

The attempts of placed calls are reserved the same way (``RESERVE_PACED`` scripts, one
per call, in one pipeline): each script is atomic on its own, as when the calls send
them one by one, so a frequency cap holds exactly as before across any number of
gateways; only the round trip is shared.

Plain Redis and Sentinel only (on a Cluster, ``READ_FACTS``'s keys would have to share a
slot, and ``RESERVE_PACED`` does not run), and not for a call that presents a prescreen
token (its read consumes the token with ``GETDEL``, a write): those run alone, as before.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from gateway.store.base import OPERATION_DEADLINE, StoreUnavailable

#: Most calls in one batch (for reads, a few READ_FACTS calls of one pipeline: about
#: 0.3 ms of the server's time, the longest another client waits behind it).
MAX_GROUP = 64

T = TypeVar("T")  # one call's operation
R = TypeVar("R")  # its result


class Group(Generic[T, R]):
    """Runs the operations of calls that arrive together in one batch (module docstring).

    ``run_many(items)`` runs a batch and returns one result per item, in order; an item's
    result may be an exception, raised to that item's caller only.
    """

    def __init__(self, run_many: Callable[[Sequence[T]], Awaitable[list[R | BaseException]]],
                 ) -> None:
        self._run_many = run_many
        self._busy = False  # a batch in flight (a lone call's, or the group task's)
        self._queue: collections.deque[_Waiting[T, R]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._current: list[_Waiting[T, R]] = []  # the group task's batch in flight

    def wanted(self, n: int) -> list[bool]:
        """For a batch function running ``n`` items: which callers still wait for their
        result (a lone call's caller always does: it is the one running)."""
        if len(self._current) != n:
            return [True] * n
        return [not w.future.done() for w in self._current]

    async def run(self, item: T) -> R:
        if not self._busy:
            self._busy = True
            try:
                result = (await self._run_many((item,)))[0]
            finally:
                self._busy = False
                self._next()
            if isinstance(result, BaseException):
                raise result
            return result
        waiting = _Waiting[T, R](item, OPERATION_DEADLINE.get(),
                                 asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        return await waiting.future  # cancelled (budget spent): the group skips it

    def _next(self) -> None:
        """After a batch: the calls queued meanwhile are run by the group task."""
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()  # callers that gave up: no task for them alone
        if self._queue and (self._task is None or self._task.done()):
            self._busy = True  # from now on: the task is in flight, callers queue
            self._task = asyncio.get_running_loop().create_task(
                self._run_queued(), name="store-group")

    async def _run_queued(self) -> None:
        batch: list[_Waiting[T, R]] = []
        try:
            while True:
                batch = []
                while self._queue and len(batch) < MAX_GROUP:
                    waiting = self._queue.popleft()
                    if not waiting.future.done():  # its caller gave up: not run
                        batch.append(waiting)
                if not batch:
                    return
                deadlines = [w.deadline for w in batch]
                last = None if None in deadlines else max(d for d in deadlines if d is not None)
                token = OPERATION_DEADLINE.set(last)
                self._current = batch
                try:
                    async with asyncio.timeout_at(last):  # nobody waits longer
                        results = await self._run_many([w.item for w in batch])
                except Exception as exc:  # noqa: BLE001  # handed to each caller, who decides
                    for w in batch:
                        _settle(w.future, exc)
                else:
                    for w, f in zip(batch, results, strict=True):
                        _settle(w.future, f)
                finally:
                    self._current = []
                    OPERATION_DEADLINE.reset(token)
        except asyncio.CancelledError:
            closing = StoreUnavailable("store closing")
            for w in (*batch, *self._queue):  # shutting down: nobody will run them
                _settle(w.future, closing)
            self._queue.clear()
            raise
        finally:
            self._busy = False

    def close(self) -> None:
        """The store is closing: the calls queued or in the group task get
        ``StoreUnavailable`` (a lone call in flight ends as it would)."""
        closing = StoreUnavailable("store closing")
        for w in self._queue:
            _settle(w.future, closing)
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()  # its batch gets the same; a task never started: no batch
            self._busy = False


class _Waiting(Generic[T, R]):
    __slots__ = ("deadline", "future", "item")

    def __init__(self, item: T, deadline: float | None, future: asyncio.Future[R]) -> None:
        self.item, self.deadline, self.future = item, deadline, future


def _settle(future: asyncio.Future[R], result: R | BaseException) -> None:
    """Give a waiting caller its result or its error (nothing if it gave up)."""
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
        future.add_done_callback(_retrieved)
    else:
        future.set_result(result)


def _retrieved(future: asyncio.Future[R]) -> None:
    """The caller may be cancelled in the same turn as its batch fails: the error is
    consumed here, so that asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
