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
the store's connection-slot wait uses the latest deadline of the calls in the batch. A
failed read fails every call of its batch with the same error (``StoreUnavailable``,
``StoreBusy``), each then answered by its campaign's fail mode, as for a lone read.

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

from gateway.store.base import OPERATION_DEADLINE

#: Most calls in one batch (for reads, a few READ_FACTS calls of one pipeline: about
#: 0.3 ms of the server's time, the longest another client waits behind it).
MAX_GROUP = 64

T = TypeVar("T")  # one call's operation
R = TypeVar("R")  # its result


class Group(Generic[T, R]):
    """Runs the operations of calls that arrive together in one batch (module docstring).

    ``run_many(items)`` runs a batch and returns one result per item, in order.
    """

    def __init__(self, run_many: Callable[[Sequence[T]], Awaitable[list[R]]]) -> None:
        self._run_many = run_many
        self._busy = False  # a batch in flight (a lone call's, or the group task's)
        self._queue: collections.deque[_Waiting[T, R]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    async def run(self, item: T) -> R:
        if not self._busy:
            self._busy = True
            try:
                return (await self._run_many((item,)))[0]
            finally:
                self._busy = False
                self._next()
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
                token = OPERATION_DEADLINE.set(
                    None if None in deadlines else max(d for d in deadlines if d is not None))
                try:
                    results = await self._run_many([w.item for w in batch])
                except Exception as exc:  # noqa: BLE001  # handed to each caller, who decides
                    for w in batch:
                        if not w.future.done():
                            w.future.set_exception(exc)
                            w.future.add_done_callback(_retrieved)
                else:
                    for w, f in zip(batch, results, strict=True):
                        if not w.future.done():
                            w.future.set_result(f)
                finally:
                    OPERATION_DEADLINE.reset(token)
        except asyncio.CancelledError:
            for w in (*batch, *self._queue):  # shutting down: nobody will run them
                w.future.cancel()
            self._queue.clear()
            raise
        finally:
            self._busy = False

    def close(self) -> None:
        """The store is closing: the calls queued or in the group task are cancelled (a
        lone call in flight ends as it would)."""
        if self._task is not None:
            self._task.cancel()
        for w in self._queue:
            w.future.cancel()
        self._queue.clear()


class _Waiting(Generic[T, R]):
    __slots__ = ("deadline", "future", "item")

    def __init__(self, item: T, deadline: float | None, future: asyncio.Future[R]) -> None:
        self.item, self.deadline, self.future = item, deadline, future


def _retrieved(future: asyncio.Future[R]) -> None:
    """The caller may be cancelled in the same turn as its batch fails: the error is
    consumed here, so that asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
