"""Redis Stream audit sink: ``XADD`` and the chain head update in one Lua script.

Keys (the audit part of the Redis key schema, ``gateway.store.keys``):

- ``<stream_key>`` (default ``dg:audit``): a Stream, one entry per record, field ``r``
  holding the canonical line.
- ``<stream_key>:heads``: a Hash, field = writer instance id, value = ``seq:hash`` of
  that instance's last record. Updated atomically with the ``XADD``.

Group commit: concurrent appends are queued and written by one writer task, all the
records queued meanwhile in one script call (one round trip per batch, not per record):
a burst of N calls costs a few round trips instead of N serialised ones. A record whose
caller gave up (write deadline) before the writer took it is dropped, never written.

The script appends only if the stored head is the one the writer chained from;
otherwise it returns the current head and the writer re-seals after it. So two
processes configured with the same instance id still produce one linear chain, and a
write whose reply was lost (deadline) is never duplicated nor forks the chain.

Saturated or down: when an append misses ``write_timeout_s`` (or the script call hits its
socket timeout) while the event loop ran late (``gateway.loop_lag``), or while the writer
was completing batches (one completed during the wait or less than a second before it),
the sink was up and the gateway saturated: the error says
so (``AuditUnavailable.saturated``) and the call is answered ``timeout``. A Redis that
refuses, or stays silent while the loop keeps time, is ``store_unavailable``.

Redis Cluster: both keys must live in one slot; give the stream key a hash tag, e.g.
``{dg:audit}`` (the heads key is derived from it and keeps the tag).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import structlog
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from gateway.audit.anchor import AnchorFile, AnchorLog, AuditHooks
from gateway.audit.chain import ChainHead, next_link, seal
from gateway.audit.enforced import FAULT_DEADLINE, FAULT_UNCERTAIN
from gateway.audit.errors import AuditConfigError, AuditUnavailable
from gateway.audit.settings import DEFAULT_ANCHOR_FILE_INTERVAL_S
from gateway.loop_lag import answered_recently, loop_lag
from gateway.store.keys import audit_heads_key as heads_key  # the key schema
from gateway.store.redis_client import make_redis_client
from gateway.store.redis_hot import from_redis_client
from gateway.store.resp import LeanClient

log = structlog.get_logger(__name__)

MAX_CONFLICT_RETRIES = 3  # re-seals after a head mismatch before giving up
MAX_BATCH_RECORDS = 256  # records per group-commit script call
CLOSE_FLUSH_S = 5.0  # at close, how long superseding records still queued may take
SUPERSEDE_WRITE_S = 2.0  # one group commit of superseding records (off the hot path)
SUPERSEDE_RETRY_S = (0.5, 1.0, 2.0, 5.0)  # flusher backoff; stays at the last one
STREAM_FIELD = b"r"

# One group commit (one record or many), atomic: the records go in only if the stored head
# is the one this writer sealed them on. ARGV = instance, expected head, new head, maxlen,
# retention ms, lines...
_APPEND_MANY_LUA = """
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then cur = '' end
if cur ~= ARGV[2] then return {0, cur} end
-- the retention's cut is taken before the new entries get their ids (the server clock
-- may pass a millisecond during the script): what this call appends is never trimmed
local minid
if ARGV[5] ~= '' then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  minid = string.format('%d', now_ms - tonumber(ARGV[5]))
end
local id
for i = 6, #ARGV do
  if ARGV[4] ~= '' then
    id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'r', ARGV[i])
  else
    id = redis.call('XADD', KEYS[1], '*', 'r', ARGV[i])
  end
end
if minid then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', minid)
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return {1, id}
"""

_REDIS_FAILURES = (redis_errors.RedisError, OSError)


def _nothing() -> None:
    """A no-op job: queued behind the anchor thread's pending write."""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def make_client(url: str, *, timeout_s: float) -> Redis:
    """A ``redis.asyncio`` client for ``redis://``, ``rediss://`` or ``unix://`` URLs, from
    the one client factory (:func:`gateway.store.redis_client.make_redis_client`).

    Sentinel and Cluster: pass a client built by that factory instead
    (``open_audit_trail(settings, redis_client=...)``), as ``gateway.app`` does.
    """
    scheme = url.partition("://")[0].lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise AuditConfigError(
            f"audit redis_url scheme {scheme!r}: use redis://, rediss:// or unix://, or "
            "pass a client (Sentinel/Cluster) to open_audit_trail(redis_client=...)")
    client: Redis
    client, _ = make_redis_client(url, socket_timeout_s=timeout_s,
                                  connect_timeout_s=timeout_s, decode_responses=False)
    return client  # a plain client: nothing to close beside it


class _Expired(Exception):
    """The write deadline passed: set on the caller's future by :meth:`_Queued.expire`."""


class _Queued:
    """A record waiting for the writer task, and its caller's future."""

    __slots__ = ("abandoned", "body", "done")

    def __init__(self, body: Mapping[str, Any], done: asyncio.Future[str]) -> None:
        self.body, self.done = body, done
        self.abandoned = False  # the caller gave up at the deadline (answered BLOCK)

    def expire(self) -> None:
        """The write deadline passed: the caller gives up; the writer leaves it out."""
        if not self.done.done():
            self.abandoned = True
            self.done.set_exception(_Expired())


class RedisStreamSink:
    """Appends sealed records to a Redis Stream (see the module docstring)."""

    def __init__(self, *, client: Redis | RedisCluster, owns_client: bool, stream_key: str,
                 instance: str,
                 maxlen: int | None, retention_s: int | None, write_timeout_s: float,
                 max_pending: int, anchor_path: str | None = None,
                 anchor_interval_s: float = 60.0,
                 anchor_file_interval_s: float = DEFAULT_ANCHOR_FILE_INTERVAL_S,
                 hooks: AuditHooks | None = None) -> None:
        self._client = client
        self._owns_client = owns_client
        self.stream_key = stream_key
        self.heads_key = heads_key(stream_key)
        self._instance = instance
        self._maxlen = maxlen
        self._retention_s = retention_s
        self._timeout_s = write_timeout_s
        self._max_pending = max_pending
        self._pending = 0
        self._last_written = float("-inf")  # loop time the writer last completed a batch
        # the writer task and the superseding flusher: one writer of the chain at a time
        self._lock = asyncio.Lock()
        # records waiting for the writer task
        self._queue: collections.deque[_Queued] = collections.deque()
        self._writer: asyncio.Task[None] | None = None
        self._script_many = client.register_script(_APPEND_MANY_LUA)
        # group commits on a lean pipelined connection (plain Redis, Sentinel); a Cluster
        # keeps redis-py (gateway.store.resp)
        self._lean = from_redis_client(client)
        self._head: str = ""  # "seq:hash" this writer believes is stored ("" = none)
        self._closed = False
        self._closing = False  # close() under way: no new records, superseding ones still
        self._hooks = hooks or AuditHooks()
        # superseding records waiting to be written, oldest first (see supersede())
        self._backlog: collections.deque[Mapping[str, Any]] = collections.deque()
        # a backlog batch whose script call failed after it was sent (it may have landed):
        # (the head it writes, its records); a head conflict that finds it stored says it
        # did, and the flusher then drops it instead of writing it again (_landed)
        self._sent: tuple[str, int] = ("", 0)
        self._in_doubt: tuple[str, int] = ("", 0)
        self._landed = 0
        self._flusher: asyncio.Task[None] | None = None
        # the anchor file is written off the event loop, latest head only, at most once
        # per anchor_file_interval_s (one loop timer; see _anchor_to)
        self.anchor_path = anchor_path
        self._anchor = AnchorFile(anchor_path, fsync=False) if anchor_path else None
        self._anchor_log = AnchorLog(anchor_interval_s, self._hooks, stream_key)
        self._anchor_file_interval_s = anchor_file_interval_s
        self._anchor_latest: ChainHead | None = None  # not handed to the thread yet
        self._anchor_timer: asyncio.TimerHandle | None = None
        self._anchor_handed = float("-inf")  # loop time of the last hand-off
        self._anchor_shut = False  # close() handed the last head: no more hand-offs
        self._anchor_next: ChainHead | None = None  # handed, not yet taken by the thread
        # the first record of this sink's first batch, or of the first batch after a head
        # conflict (a start, a cut, another writer): the chain may not be where the anchor
        # left it, so that record is checked against the anchor on its own, never
        # coalesced with the later heads (see _anchor_to)
        self._anchor_recheck = True
        self._anchor_check: ChainHead | None = None  # handed, not yet taken by the thread
        self._anchor_mutex = threading.Lock()
        self._anchor_error = ""
        self._anchor_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="audit-anchor")

    @property
    def hot_connection(self) -> LeanClient | None:
        """This sink's lean connection (None on a Cluster)."""
        return self._lean

    async def append(self, body: Mapping[str, Any]) -> str:
        if self._closed or self._closing:
            raise AuditUnavailable("audit trail is closed")
        if self._pending >= self._max_pending:
            raise AuditUnavailable(f"audit stream backlog over {self._max_pending} writes")
        self._pending += 1
        loop = asyncio.get_running_loop()
        lag, began = loop_lag(), loop.time()
        item = _Queued(body, loop.create_future())
        self._queue.append(item)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="audit-writer")
        # one timer, no timeout context or shield: a caller cancelled (never the hot
        # path's) cancels the future only, and its record is written all the same
        timer = loop.call_at(began + self._timeout_s, item.expire)
        try:
            return await item.done
        except _Expired as exc:
            with contextlib.suppress(ValueError):
                self._queue.remove(item)  # not taken yet: never written
            # taken: the writer must not re-seal it after a head conflict, for by then a
            # superseding record may have moved the head (see _write_queued); expire()
            # marked it abandoned
            # taken or not, the call is blocked: a superseding record says so
            saturated = (answered_recently(self._last_written, began)
                         or lag.lagged(began, self._timeout_s))
            raise AuditUnavailable(f"audit stream write exceeded {self._timeout_s}s",
                                   fault=FAULT_DEADLINE, saturated=saturated) from exc
        finally:
            timer.cancel()
            self._pending -= 1

    async def _write_queued(self) -> None:
        """The writer task: one script call per batch of queued records, until empty."""
        while self._queue:
            batch = [self._queue.popleft()
                     for _ in range(min(MAX_BATCH_RECORDS, len(self._queue)))]
            error: AuditUnavailable | None = None
            began = asyncio.get_running_loop().time()
            try:
                async with self._lock:  # one writer of the chain at a time (see supersede)
                    digests = await self._append_batch(
                        [item.body for item in batch],
                        abandoned=lambda i: batch[i].abandoned)  # noqa: B023  # awaited here
            except AuditUnavailable as exc:
                error = exc
            except _REDIS_FAILURES as exc:
                # the script may have run before the connection failed: treat it as landed;
                # a socket timeout while the loop ran late is saturation, not an outage
                late = (isinstance(exc, redis_errors.TimeoutError | TimeoutError)
                        and loop_lag().lagged(began, self._timeout_s))
                error = AuditUnavailable(f"audit stream: {type(exc).__name__}: {exc}",
                                         fault=FAULT_UNCERTAIN, saturated=late)
            except Exception as exc:  # noqa: BLE001  # any bug: never silent, never a hang
                error = AuditUnavailable(f"audit stream: {type(exc).__name__}: {exc}",
                                         fault=FAULT_UNCERTAIN)
            for i, item in enumerate(batch):
                done = item.done
                if done.done():
                    continue
                if error is not None:
                    done.set_exception(error)
                elif i in digests:
                    done.set_result(digests[i])
            if error is None:
                self._last_written = asyncio.get_running_loop().time()

    def supersede(self, body: Mapping[str, Any]) -> None:
        """Queue a superseding record, written by a background flusher (with backoff
        while Redis is away), off the hot path. Order: it is appended after the timed-out
        original or not at all before it — the append script's head check refuses a late
        original once any record (this one included) has moved the head."""
        if self._closed or len(self._backlog) >= self._max_pending:
            log.error("audit.supersede_dropped", stream=self.stream_key,
                      decision_id=body.get("id"))
            self._hooks.event("supersede_dropped")
            return
        self._backlog.append(body)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_until_empty(),
                                                name="audit-supersede")

    async def _flush_until_empty(self) -> None:
        attempt = 0
        while self._backlog and not self._closed:
            try:
                async with self._lock:
                    await self._flush_locked(max(self._timeout_s, SUPERSEDE_WRITE_S))
                return
            except (TimeoutError, *_REDIS_FAILURES, AuditUnavailable) as exc:
                delay = SUPERSEDE_RETRY_S[min(attempt, len(SUPERSEDE_RETRY_S) - 1)]
                attempt += 1
                log.warning("audit.supersede_retry", stream=self.stream_key,
                            waiting=len(self._backlog), retry_in_s=delay,
                            error=str(exc) or type(exc).__name__)
                if attempt == len(SUPERSEDE_RETRY_S):
                    self._hooks.event("supersede_delayed")
                await asyncio.sleep(delay)  # backoff while Redis is away

    async def _flush_locked(self, batch_deadline_s: float) -> None:
        """Write the backlog in group commits, oldest first, each within
        ``batch_deadline_s`` (no call waits on them: generous, so that a slow Redis is not
        taken for a failed one and a landed batch is not sent again); a batch leaves the
        backlog only once its script call has returned (a failed call leaves it whole)."""
        while self._backlog:
            if self._landed:  # a batch in doubt was found stored since (_append_batch)
                for _ in range(min(self._landed, len(self._backlog))):
                    self._backlog.popleft()
                self._landed = 0
                continue
            batch = list(itertools.islice(self._backlog, MAX_BATCH_RECORDS))
            self._sent = ("", 0)  # set by this batch's script call, once sent
            try:
                async with asyncio.timeout(batch_deadline_s):
                    await self._append_batch(batch, abandoned=lambda _i: False,
                                             backlog=True)
            except BaseException:
                self._in_doubt = self._sent
                raise
            self._in_doubt = ("", 0)
            if self._landed:  # not written: it began with the batch in doubt, which landed
                continue
            for _ in batch:
                self._backlog.popleft()

    async def _append_batch(self, bodies: list[Mapping[str, Any]], *,
                            abandoned: Callable[[int], bool], backlog: bool = False,
                            ) -> dict[int, str]:
        """Seal and append ``bodies`` in one script call: {index: digest} of those
        written. ``abandoned(i)``: body i's caller has given up (answered BLOCK): it is
        left out of every attempt, so a head conflict never re-seals it after a
        superseding record that says the call was blocked. ``backlog``: ``bodies`` are
        the backlog's first records (the flusher): when a head conflict finds the batch in
        doubt stored, nothing is written ({}) and the flusher drops it (``_landed``)."""
        for _ in range(MAX_CONFLICT_RETRIES + 1):
            wanted = [i for i in range(len(bodies)) if not abandoned(i)]
            if not wanted:
                return {}
            head = ChainHead.decode(self._head) if self._head else None
            lines: list[str] = []
            digests: dict[int, str] = {}
            first: ChainHead | None = None
            for i in wanted:
                seq, prev = next_link(head)
                line, digest = seal(bodies[i], seq=seq, prev=prev)
                head = ChainHead(seq, digest)
                first = first or head
                lines.append(line)
                digests[i] = digest
            if head is None or first is None:  # pragma: no cover - batches are never empty
                raise AuditUnavailable("empty audit batch")
            new_head = head.encode()
            retention_ms = "" if self._retention_s is None else str(self._retention_s * 1000)
            maxlen = "" if self._maxlen is None else str(self._maxlen)
            keys = [self.stream_key, self.heads_key]
            args = [self._instance, self._head, new_head, maxlen, retention_ms, *lines]
            self._sent = (new_head, len(lines))
            if self._lean is not None:
                reply = await self._lean.evalsha(_APPEND_MANY_LUA, keys, args)
            else:
                reply = await self._script_many(keys=keys, args=args)
            self._sent = ("", 0)  # answered: not in doubt
            ok, value = reply[0], reply[1]
            if ok == 1:
                self._head = new_head
                self._anchor_to(head, first)
                return digests
            stored = _text(value)
            if stored == new_head:
                # this very batch, sealed on the same head, is the one stored: a retry after
                # its reply was lost (the script ran). Written, never sealed after itself
                self._head = stored
                self._anchor_to(head, first)
                return digests
            if self._in_doubt[0] and stored == self._in_doubt[0]:
                # the backlog batch in doubt landed (its reply was lost): not written again
                self._landed, self._in_doubt = self._in_doubt[1], ("", 0)
                if backlog:  # these bodies begin with it: the flusher drops it, sends the rest
                    return {}
            if self._head:
                log.warning("audit.chain_conflict", stream=self.stream_key,
                            instance=self._instance, expected=self._head, stored=stored)
            self._head = stored
            self._anchor_recheck = True  # not where this sink left it: see _anchor_to
        raise AuditUnavailable("audit chain head keeps moving: is another writer "
                               f"using instance id {self._instance!r}?")

    def _anchor_to(self, head: ChainHead, first: ChainHead) -> None:
        """A new head (``first``: the batch's first record): the anchor file gets it within
        ``anchor_file_interval_s``. The first head after a quiet interval is handed to the
        thread at once, the following ones (the latest only) by one timer when the interval
        since that hand-off is over: a thread hand-off per interval, not per batch.

        Except the first record of this sink's first batch, or of the first batch after a
        head conflict: handed at once and on its own (after the heads before it), so that
        the anchor check sees it. Coalesced, a chain cut below the anchor and grown past it
        again within the interval (or within one batch, a burst at restart) would move the
        anchor on without freezing it."""
        self._anchor_log.maybe_emit(self._instance, head)
        if self._anchor is None:
            return
        if self._anchor_recheck:
            self._anchor_recheck = False
            self._hand_anchor()  # the heads before it first (the thread writes in order)
            if not self._anchor_shut:
                self._anchor_handed = asyncio.get_running_loop().time()
                self._submit_anchor(first, check=True)
            if first.seq == head.seq:
                return
        self._anchor_latest = head
        if self._anchor_timer is None and not self._anchor_shut:
            loop = asyncio.get_running_loop()
            due = max(loop.time(), self._anchor_handed + self._anchor_file_interval_s)
            self._anchor_timer = loop.call_at(due, self._anchor_due)

    def _anchor_due(self) -> None:  # the anchor timer
        self._anchor_timer = None
        self._hand_anchor()

    def _hand_anchor(self) -> None:
        """Hand the latest head to the anchor thread (never blocks: a hung file system
        holds one job in the thread and one queued behind it, whatever comes after)."""
        if self._anchor_timer is not None:
            self._anchor_timer.cancel()
            self._anchor_timer = None
        head, self._anchor_latest = self._anchor_latest, None
        if head is None or self._anchor_shut:
            return
        self._anchor_handed = asyncio.get_running_loop().time()
        self._submit_anchor(head)

    def _submit_anchor(self, head: ChainHead, *, check: bool = False) -> None:
        with self._anchor_mutex:
            pending = self._anchor_next is not None or self._anchor_check is not None
            if check:
                self._anchor_check = head
            else:
                self._anchor_next = head
        if not pending:  # one job in the thread at a time; it writes the latest heads
            self._anchor_executor.submit(self._write_anchor)

    def disown_client(self) -> None:
        """Leave the client open at :meth:`close` (another sink took it over)."""
        self._owns_client = False

    async def anchor_settled(self) -> None:
        """Write the anchor of the last appended record now (not at the end of the
        interval) and wait for it (the file is written off the event loop): a ``verify``
        in this process then reads the anchor of every record it has seen acknowledged,
        not an older one or none."""
        if self._anchor is None:
            return
        self._hand_anchor()
        try:
            await asyncio.get_running_loop().run_in_executor(self._anchor_executor, _nothing)
        except RuntimeError:  # closed: its last anchor write was waited for at close
            return

    def _write_anchor(self) -> None:  # anchor thread
        with self._anchor_mutex:
            check, self._anchor_check = self._anchor_check, None
            head, self._anchor_next = self._anchor_next, None
        if self._anchor is None:
            return
        # a head checked on its own (see _anchor_to) and the latest one: in chain order
        heads = sorted((h for h in (head, check) if h is not None), key=lambda h: h.seq)
        for i, one in enumerate(heads):
            if i and one == heads[i - 1]:
                continue  # the same record: written once (same seq, other hash: a cut)
            try:
                self._anchor.write(self._instance, one)
            except (OSError, ValueError) as exc:
                if str(exc) != self._anchor_error:
                    log.error("audit.anchor_failed", anchor=self._anchor.path, error=str(exc))
                self._anchor_error = str(exc)
                self._hooks.event("anchor_failed")
            else:
                self._anchor_error = ""

    async def heads(self) -> dict[str, ChainHead]:
        try:
            async with asyncio.timeout(self._timeout_s):
                raw = await self._client.hgetall(self.heads_key)
        except TimeoutError as exc:
            raise AuditUnavailable("reading audit heads timed out") from exc
        except _REDIS_FAILURES as exc:
            raise AuditUnavailable(f"audit stream: {exc}") from exc
        return {_text(k): ChainHead.decode(_text(v)) for k, v in raw.items()}

    def _close_anchor(self) -> None:  # anchor thread, after the last anchor write
        if self._anchor is not None:
            self._anchor.close()

    async def iter_lines(self, *, page_size: int, timeout_s: float,
                         ) -> AsyncIterator[tuple[str, bytes]]:
        """Every entry, oldest first, read with ``XRANGE`` in pages of ``page_size``."""
        start = "-"
        while True:
            try:
                async with asyncio.timeout(timeout_s):
                    page = await self._client.xrange(self.stream_key, start, "+",
                                                     count=page_size)
            except TimeoutError as exc:
                raise AuditUnavailable("reading the audit stream timed out") from exc
            except _REDIS_FAILURES as exc:
                raise AuditUnavailable(f"audit stream: {exc}") from exc
            entries = page or []
            for entry_id, fields in entries:
                fields = fields or {}
                line = fields.get(STREAM_FIELD, fields.get("r", b""))  # str with decode_responses
                yield f"stream {_text(entry_id)}", line.encode() if isinstance(line, str) else line
            if len(entries) < page_size:
                return
            start = "(" + _text(entries[-1][0])

    async def close(self) -> None:
        if self._closed or self._closing:
            return
        # 1. no new records; the writer ends what it took (its callers may still time out
        #    meanwhile: their superseding records are still accepted)
        self._closing = True
        if self._writer is not None and not self._writer.done():
            try:
                async with asyncio.timeout(self._timeout_s):
                    await asyncio.shield(self._writer)
            except TimeoutError:
                self._writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writer
        # 2. a last try for superseding records, last of all: the drain's grace, not one
        #    write's deadline (no call waits on it; losing it loses the proof)
        if self._backlog:
            try:
                async with self._lock:
                    await self._flush_locked(max(self._timeout_s, CLOSE_FLUSH_S))
            except (TimeoutError, *_REDIS_FAILURES, AuditUnavailable) as exc:
                log.error("audit.supersede_lost", stream=self.stream_key,
                          records=len(self._backlog), error=str(exc) or type(exc).__name__)
                self._hooks.event("supersede_failed")
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
        if self._head:  # the last head, in the log, whatever the interval
            self._anchor_log.maybe_emit(self._instance, ChainHead.decode(self._head), force=True)
        self._hand_anchor()  # the last head, whatever the interval
        self._anchor_shut = True
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(max(self._timeout_s, 1.0)):
                await loop.run_in_executor(self._anchor_executor, self._close_anchor)
        except TimeoutError:
            log.error("audit.close_timeout", anchor=self.anchor_path)
        self._anchor_executor.shutdown(wait=False, cancel_futures=True)
        if self._lean is not None:  # this sink's own connection, whoever owns the client
            await self._lean.close()
        if self._owns_client:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._client.aclose()
            except (TimeoutError, *_REDIS_FAILURES) as exc:
                log.warning("audit.close_failed", error=str(exc))
