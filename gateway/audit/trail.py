"""The audit trail the service writes to: settings, sink selection, reading back."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from gateway.audit.anchor import (
    AuditHooks,
    read_anchor_file,
    split_diverged,
)
from gateway.audit.chain import ChainHead, ChainVerifier, VerifyReport, canonical
from gateway.audit.enforced import FAULT_EDGE_DEADLINE, superseding_body
from gateway.audit.errors import AuditConfigError, AuditUnavailable
from gateway.audit.export import Exporter, ExportFormat, ExportStats
from gateway.audit.jsonl import JsonlSink, iter_lines
from gateway.audit.record import AuditRecord, NumberPrivacy, RecordBody
from gateway.audit.settings import AuditSettings as AuditSettings  # re-exported

# The Redis sink (and redis-py) is imported when a trail uses it: a CLI command on a
# JSONL trail, or on none, starts without them (docs/benchmarks.md, CLI start-up).
if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from gateway.audit.redis_sink import RedisStreamSink
    from gateway.store.resp import LeanClient

READ_CHUNK_LINES = 512  # lines read per thread hop when reading a JSONL file back


class _Sink(Protocol):
    async def append(self, body: Mapping[str, Any]) -> str: ...
    def supersede(self, body: dict[str, Any]) -> None: ...
    async def heads(self) -> dict[str, ChainHead]: ...
    async def close(self) -> None: ...


class _NoSink:
    """``sink = "none"``: nothing is kept (tests, demos). Returns the body's digest."""

    async def append(self, body: Mapping[str, Any]) -> str:
        return hashlib.sha256(canonical(body).encode("ascii")).hexdigest()

    def supersede(self, body: dict[str, Any]) -> None:
        return None

    async def heads(self) -> dict[str, ChainHead]:
        return {}

    async def close(self) -> None:
        return None


class AuditTrail:
    """Append records (hot path) and read them back (verify, export)."""

    def __init__(self, settings: AuditSettings, *,
                 redis_client: Redis | RedisCluster | None = None,
                 hooks: AuditHooks | None = None,
                 resolve_stream_key: Callable[[], Awaitable[str]] | None = None) -> None:
        """``resolve_stream_key``: the Redis stream could not be chosen when the trail was
        opened (Redis unreachable): it is chosen by this call before the first use, and
        until it answers every use fails (:class:`AuditUnavailable`): nothing is written
        to a stream picked by guess."""
        self.settings = settings
        self._resolve_stream_key = resolve_stream_key
        self._resolve_lock = asyncio.Lock()
        self.privacy = NumberPrivacy(settings.number_mode, settings.hash_key)
        # metrics set these after construction; the sinks call them (thread-safe)
        self.hooks = hooks or AuditHooks()
        anchor = dict(anchor_path=settings.resolved_anchor_path,
                      anchor_interval_s=settings.anchor_interval_s, hooks=self.hooks)
        self._jsonl: JsonlSink | None = None
        self._redis: RedisStreamSink | None = None
        self._sink: _Sink
        if settings.sink == "jsonl":
            self._jsonl = JsonlSink(
                path=settings.path, head_path=settings.head_path,
                instance=settings.instance_id, fsync=settings.fsync,
                write_timeout_s=settings.write_timeout_s, max_pending=settings.max_pending,
                **anchor)  # type: ignore[arg-type]
            self._sink = self._jsonl
        elif settings.sink == "redis":
            from gateway.audit.redis_sink import make_client

            if redis_client is None and not settings.redis_url:
                raise AuditConfigError("audit sink 'redis' needs redis_url (or a client)")
            client = redis_client or make_client(settings.redis_url or "",
                                                 timeout_s=settings.write_timeout_s)
            self._redis_client, self._owns_redis_client = client, redis_client is None
            self._redis = self._redis_sink()
            self._sink = self._redis
        else:
            self._sink = _NoSink()

    def _redis_sink(self) -> RedisStreamSink:
        from gateway.audit.redis_sink import RedisStreamSink

        settings = self.settings
        return RedisStreamSink(
            client=self._redis_client, owns_client=self._owns_redis_client,
            stream_key=settings.resolved_stream_key, instance=settings.instance_id,
            maxlen=settings.maxlen, retention_s=settings.retention_s,
            write_timeout_s=settings.write_timeout_s, max_pending=settings.max_pending,
            anchor_path=settings.resolved_anchor_path,
            anchor_interval_s=settings.anchor_interval_s,
            anchor_file_interval_s=settings.anchor_file_interval_s, hooks=self.hooks)

    async def _stream_chosen(self) -> None:
        """Choose the stream deferred at open time (once; raises AuditUnavailable while
        Redis does not answer). Nothing was written before: the sink is rebuilt on the
        chosen key, with its heads key and anchor file."""
        if self._resolve_lock.locked():  # one try at a time; the others fail fast
            raise AuditUnavailable("audit stream not chosen yet (Redis did not answer)")
        async with self._resolve_lock:
            resolve = self._resolve_stream_key
            if resolve is None or self._redis is None:
                return
            key = await resolve()
            if key != self.settings.resolved_stream_key:
                old = self._redis
                self.settings = dataclasses.replace(self.settings, stream_key=key)
                self._redis = self._redis_sink()
                self._sink = self._redis
                old.disown_client()  # the new sink has it
                await old.close()
            self._resolve_stream_key = None

    def __repr__(self) -> str:
        return f"AuditTrail(sink={self.settings.sink!r}, privacy={self.privacy!r})"

    def hot_connection(self) -> LeanClient | None:
        """The Redis stream sink's lean connection (``gateway.store.resp.LeanClient``),
        None for another sink or a Cluster."""
        return None if self._redis is None else self._redis.hot_connection

    async def append(self, record: AuditRecord) -> str:
        """Seal and store one record within ``write_timeout_s``; returns its hash.

        Raises :class:`AuditUnavailable` when the sink fails or the deadline passes.
        The record's ``instance`` is this trail's ``instance_id`` (the chain it joins).
        """
        if self._resolve_stream_key is not None:
            await self._stream_chosen()
        body = RecordBody(record, self.privacy, self.settings.instance_id)
        # serialised here, as the dict was built here: a record that cannot be (a lone
        # surrogate to hash) fails its own caller, never a sink's group commit
        body.canonical_parts()
        try:
            return await self._sink.append(body)
        except AuditUnavailable as exc:
            if exc.fault is not None:
                # the record may still land late: make sure the one after it says
                # what was enforced (see gateway.audit.enforced)
                self._sink.supersede(superseding_body(body, fault=exc.fault,
                                                       saturated=exc.saturated))
            raise

    def overrule(self, record: AuditRecord, *, verdict: str, reason: str) -> None:
        """Queue a superseding record for ``record``: the edge answered ``verdict reason``
        without waiting for the decision (``audit_fault.kind`` = ``edge_deadline``).
        Written behind the record itself, never before it (the sinks' supersede order)."""
        body = record.to_body(self.privacy)
        body["instance"] = self.settings.instance_id
        self.hooks.event("edge_overruled")
        self._sink.supersede(superseding_body(body, fault=FAULT_EDGE_DEADLINE,
                                              enforced=(verdict, reason)))

    async def close(self) -> None:
        await self._sink.close()

    # --- reading back -------------------------------------------------------------

    async def heads(self) -> dict[str, ChainHead]:
        if self._resolve_stream_key is not None:
            await self._stream_chosen()
        return await self._sink.heads()

    async def iter_lines(self, paths: Sequence[str] | None = None, *,
                         keep_newline: bool = False) -> AsyncIterator[tuple[str, bytes]]:
        """Stored ``(position, line)`` pairs, oldest first. ``paths``: for the JSONL sink,
        the files to read in order (rotated ones first); default the current file."""
        if self._resolve_stream_key is not None:
            await self._stream_chosen()
        if self._redis is not None:
            async for item in self._redis.iter_lines(
                    page_size=self.settings.read_page_size,
                    timeout_s=self.settings.read_timeout_s):
                yield item
        elif self._jsonl is not None:
            if not paths and not await asyncio.to_thread(os.path.exists, self.settings.path):
                return  # no trail file (yet, or deleted): heads and anchors tell which
            lines = iter_lines(list(paths) if paths else [self.settings.path],
                               keep_newline=keep_newline)
            while True:
                # blocking file reads go to a thread, one chunk of lines at a time
                try:
                    chunk = await asyncio.to_thread(_take, lines, READ_CHUNK_LINES)
                except OSError as exc:
                    raise AuditUnavailable(f"cannot read the audit file: {exc}") from exc
                for item in chunk:
                    yield item
                if len(chunk) < READ_CHUNK_LINES:
                    return

    async def anchors(self) -> dict[str, dict[str, ChainHead]]:
        """The heads kept apart from the trail, by where they are kept (the anchor
        file; ``{}`` when it is missing)."""
        if self._resolve_stream_key is not None:
            await self._stream_chosen()
        path = self.settings.resolved_anchor_path
        if path is None:
            return {}
        if self._redis is not None:
            await self._redis.anchor_settled()
        try:
            kept = await asyncio.to_thread(read_anchor_file, path)
        except (OSError, ValueError) as exc:
            raise AuditUnavailable(f"cannot read the audit anchor file {path}: {exc}") from exc
        return {} if kept is None else {f"anchor file {path}": kept}  # "!" marks included

    def heads_name(self) -> str:
        if self._redis is not None:
            return f"heads key {self._redis.heads_key}"
        return f"head file {self.settings.resolved_head_path}"

    async def verify(self, paths: Sequence[str] | None = None, *,
                     allow_trimmed_prefix: bool | None = None,
                     check_heads: bool = True,
                     expected: dict[str, ChainHead] | None = None) -> VerifyReport:
        """Verify the stored chains against their kept heads, the anchor file and the
        ``expected`` heads (e.g. from the ``audit.anchor`` log lines). A trimmed prefix
        is accepted when the sink trims (Redis with maxlen/retention) unless told
        otherwise."""
        if allow_trimmed_prefix is None:
            allow_trimmed_prefix = self.settings.trimmed
        heads = await self.heads() if check_heads else None
        anchors = await self.anchors() if check_heads else {}
        if expected:
            anchors["expected head (given to verify)"] = dict(expected)
        marks: dict[str, dict[str, ChainHead]] = {}
        for name in list(anchors):
            anchors[name], marks[name] = split_diverged(anchors[name])
        verifier = ChainVerifier(allow_trimmed_prefix=allow_trimmed_prefix, heads=heads,
                                 anchors=anchors, heads_name=self.heads_name(),
                                 newline_terminated=self._jsonl is not None)
        for name, found in marks.items():
            for inst, head in sorted(found.items()):
                verifier.diverged(name, inst, head)
        async for position, raw in self.iter_lines(paths, keep_newline=True):
            verifier.feed(position, raw)
        report = verifier.report()
        anchor_path = self.settings.resolved_anchor_path
        if check_heads and anchor_path is not None and not any(
                name.startswith("anchor file") for name in anchors) and report.records:
            verifier.missing_anchor(anchor_path)
        return report

    async def export(self, out: TextIO, *, since: datetime | None = None,
                     until: datetime | None = None, number: str | None = None,
                     campaign: str | None = None, fmt: ExportFormat = "jsonl",
                     paths: Sequence[str] | None = None,
                     default_region: str = "FR") -> ExportStats:
        """Export matching records to ``out`` (the number filter uses this trail's key)."""
        exporter = Exporter(out, fmt=fmt, since=since, until=until, number=number,
                            campaign=campaign, hash_key=self.settings.hash_key,
                            default_region=default_region)
        async for _, raw in self.iter_lines(paths):
            exporter.feed(raw)
        return exporter.stats


def _take(lines: Any, n: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for item in lines:
        out.append(item)
        if len(out) >= n:
            break
    return out


def open_audit_trail(settings: AuditSettings, *, redis_client: Redis | RedisCluster | None = None,
                     resolve_stream_key: Callable[[], Awaitable[str]] | None = None,
                     ) -> AuditTrail:
    """Build the trail; nothing is opened or connected until the first use.

    ``redis_client``: reuse a client built elsewhere (e.g. the store's, for Sentinel or
    Cluster); it is then not closed by :meth:`AuditTrail.close`. ``resolve_stream_key``:
    see :class:`AuditTrail`.
    """
    return AuditTrail(settings, redis_client=redis_client,
                      resolve_stream_key=resolve_stream_key)


__all__ = ["AuditSettings", "AuditTrail", "AuditUnavailable", "open_audit_trail"]
