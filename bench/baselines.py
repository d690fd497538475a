#!/usr/bin/env python3
"""Baselines for ``bench/workers.py``: the servers the gateway is compared with.

Not a harness of its own: ``bench/workers.py`` starts each role below in its own
process, drives it with the same emulated Asterisk, and measures it the same way.

- ``--bare``: the floor. An asyncio FastAGI server with no logic: it reads the
  environment, writes one fixed ``EXEC MSet`` (ALLOW), reads the reply and closes.
- ``--bare-redis URL``: the floor of any design with a shared store and an audit
  stream: the bare session, plus the three Redis round trips the gateway makes one
  after the other for a placed call (read the facts, reserve the attempt, append the
  audit record), each one trivial command (``HGET``, ``INCR``, ``XADD`` of a 2 KB
  record, the size of the gateway's), pre-encoded, on one shared connection with the
  least parsing that reads their replies. No logic: what the round trips alone cost.
- ``--naive URL``: the same checks as the gateway, written the obvious way. One
  long-running asyncio FastAGI server, ``phonenumbers`` parsing every call, and one Redis
  command awaited per rule: two opposition lists, the consent, the 30-day attempts, the
  abandon ratio, pacing, then the reservation and an audit entry (10 round trips).
- ``--per-call URL``: the way many sites run AGI. A process per call. This role is the
  launcher (as Asterisk forks ``AGI(script)``): for each connection it starts
  ``--agi-script URL`` with the socket as its stdin and stdout and reaps it, so the
  scripts' CPU is counted in the launcher's children time. Each script starts Python,
  imports redis-py, phonenumbers and holidays, connects to Redis, runs the same rules as
  ``--naive`` with a blocking client, answers and exits.

The rules (``rules()``) are written once, sans-IO: a generator that yields Redis
commands and receives their replies. Both baselines drive it, one asynchronously, one
blocking. They use the calling hours of the bench's pack (``bench/workers.py``: FR-2026
with windows open all week, holidays still blocking), so that a run at any hour decides
the same way as the gateway.

Keys live under ``naive:`` on the bench's redis-server. ``seed()`` writes them: a
consent for each bench number, and 1,000 other numbers on each opposition list.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

HOST = "127.0.0.1"
SESSION_TIMEOUT_S = 5.0
FIXED_MSET = (b'EXEC "MSet" "GW_VERDICT=ALLOW,GW_REASON=ok,GW_E164=+33600000000,'
              b'GW_RETRY_AFTER=,GW_DECISION_ID=bare"\n')
PROFESSIONAL = "acme"
FREQUENCY_LIMIT = 4  # attempts per number and professional over 30 days (FR-2026)
FREQUENCY_WINDOW_S = 30 * 86400
ABANDON_LIMIT = 0.03
# The bench pack's windows: every day, all day (bench/workers.py); holidays block.
WINDOWS_S: dict[int, tuple[tuple[int, int], ...]] = {d: ((0, 86400),) for d in range(7)}

Command = tuple[Any, ...]
Rules = Generator[Command, Any, tuple[str, str, str]]


# --- the rules, sans-IO -----------------------------------------------------------------


def rules(number: str, campaign: str, now: datetime) -> Rules:
    """Yield Redis commands, receive their replies; return (verdict, reason, e164)."""
    import phonenumbers
    from phonenumbers import timezone as pn_timezone

    try:
        parsed = phonenumbers.parse(number, "FR")
    except phonenumbers.NumberParseException:
        return "BLOCK", "invalid_number", ""
    if not phonenumbers.is_valid_number(parsed):
        return "BLOCK", "invalid_number", ""
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    zones = pn_timezone.time_zones_for_number(parsed)
    zone = ZoneInfo(zones[0] if zones and zones[0] != "Etc/Unknown" else "Europe/Paris")
    for name in ("bloctel", "internal"):
        if (yield ("SISMEMBER", f"naive:opposition:{name}", e164)):
            return "BLOCK", "opposition", e164
    consent = yield ("HGETALL", f"naive:consent:{e164}")
    if not consent or _text(consent, "professional") != PROFESSIONAL or (
            float(_text(consent, "expires_at") or 0) <= now.timestamp()):
        return "BLOCK", "no_consent", e164
    local = now.astimezone(zone)
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    if _is_holiday(local) or not any(a <= seconds < b for a, b in WINDOWS_S[local.weekday()]):
        return "BLOCK", "outside_hours", e164
    attempts_key = f"naive:attempts:{PROFESSIONAL}:{e164}"
    seen = yield ("ZCOUNT", attempts_key, now.timestamp() - FREQUENCY_WINDOW_S, "+inf")
    if int(seen) >= FREQUENCY_LIMIT:
        return "BLOCK", "frequency", e164
    stats = yield ("HMGET", f"naive:abandon:{campaign}", "abandoned", "answered")
    abandoned, answered = (int(x or 0) for x in stats)
    if abandoned / max(answered, 20) > ABANDON_LIMIT:
        return "BLOCK", "abandon_rate", e164
    minute = int(now.timestamp() // 60)
    yield ("INCR", f"naive:pacing:{campaign}:{minute}")
    yield ("EXPIRE", f"naive:pacing:{campaign}:{minute}", 120)
    yield ("ZADD", attempts_key, now.timestamp(), f"{now.timestamp()}:{os.getpid()}")
    yield ("EXPIRE", attempts_key, FREQUENCY_WINDOW_S)
    yield ("XADD", "naive:audit", "MAXLEN", "~", 100_000, "*", "e164", e164,
           "campaign", campaign, "verdict", "ALLOW", "at", now.isoformat())
    return "ALLOW", "ok", e164


def _text(mapping: dict[Any, Any], key: str) -> str:
    value = mapping.get(key, mapping.get(key.encode()))
    return value.decode() if isinstance(value, bytes) else str(value or "")


_HOLIDAYS: dict[int, Any] = {}


def _is_holiday(local: datetime) -> bool:
    import holidays

    if local.year not in _HOLIDAYS:
        _HOLIDAYS[local.year] = holidays.country_holidays("FR", years=local.year)
    return local.date() in _HOLIDAYS[local.year]


def mset(verdict: str, reason: str, e164: str) -> bytes:
    return (f'EXEC "MSet" "GW_VERDICT={verdict},GW_REASON={reason},GW_E164={e164},'
            f'GW_RETRY_AFTER=,GW_DECISION_ID=naive"\n').encode()


def parse_env(lines: list[bytes]) -> dict[str, str]:
    env = {}
    for line in lines:
        key, _, value = line.decode(errors="replace").partition(":")
        env[key.strip()] = value.strip()
    return env


# --- the servers ------------------------------------------------------------------------


async def serve(on_session: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
                ) -> None:
    """Listen on a free loopback port, print it, serve until stdin is closed."""
    tasks: set[asyncio.Task[None]] = set()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(on_session(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_connect, HOST, 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.to_thread(sys.stdin.read)  # the bench closes our stdin to stop us
    server.close()
    if tasks:
        await asyncio.wait(tasks, timeout=SESSION_TIMEOUT_S)


async def read_env(reader: asyncio.StreamReader) -> dict[str, str]:
    lines = []
    while (line := await reader.readline()) not in (b"\n", b""):
        lines.append(line)
    return parse_env(lines)


def _resp(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


# The three round trips of --bare-redis, pre-encoded (RESP): their keys are the bench's
# own (floor:*), the stream capped so that a long run stays small.
FLOOR_COMMANDS = (
    _resp(b"HGET", b"floor:h", b"f"),
    _resp(b"INCR", b"floor:n"),
    _resp(b"XADD", b"floor:s", b"MAXLEN", b"~", b"10000", b"*", b"r", b"x" * 2048),
)


class FloorRedis(asyncio.Protocol):
    """One Redis connection shared by every session of --bare-redis: a command is written
    as is, its reply (simple string, error, integer or bulk string: the only kinds those
    commands get) resolves the oldest waiting future."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while self.waiting:
            end = buffer.find(b"\r\n")
            if end < 0:
                return
            value: Any = bytes(buffer[1:end])
            size = end + 2
            if buffer[0:1] == b"$":
                length = int(value)
                if length >= 0:
                    size = end + 2 + length + 2
                    if len(buffer) < size:
                        return
                    value = bytes(buffer[end + 2:end + 2 + length])
                else:
                    value = None
            elif buffer[0:1] == b"-":
                value = RuntimeError(value.decode())
            del buffer[:size]
            future = self.waiting.popleft()
            if future.done():
                continue
            if isinstance(value, RuntimeError):
                future.set_exception(value)
            else:
                future.set_result(value)

    def connection_lost(self, exc: Exception | None) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError("redis closed the connection"))

    def call(self, command: bytes) -> asyncio.Future[Any]:
        assert self.transport is not None
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.transport.write(command)
        return future


def bare_session(redis: FloorRedis | None = None) -> Callable[
        [asyncio.StreamReader, asyncio.StreamWriter], Any]:
    """The bare FastAGI session (--bare); with ``redis``, the three round trips of
    --bare-redis before the answer."""
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SESSION_TIMEOUT_S):
                await read_env(reader)
                if redis is not None:
                    for command in FLOOR_COMMANDS:
                        await redis.call(command)
                writer.write(FIXED_MSET)
                await writer.drain()
                await reader.readline()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return session


async def serve_bare_redis(url: str) -> None:
    from urllib.parse import urlsplit

    where, loop = urlsplit(url), asyncio.get_running_loop()
    if where.scheme == "unix":
        _, redis = await loop.create_unix_connection(FloorRedis, where.path)
    else:
        _, redis = await loop.create_connection(FloorRedis, where.hostname or HOST,
                                                where.port or 6379)
    await serve(bare_session(redis))


def naive_session(url: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url, socket_timeout=SESSION_TIMEOUT_S, max_connections=256)

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SESSION_TIMEOUT_S):
                env = await read_env(reader)
                steps = rules(env.get("agi_arg_1", ""), env.get("agi_arg_2", ""),
                              datetime.now(UTC))
                reply = None
                try:
                    while True:
                        command = steps.send(reply)
                        reply = await client.execute_command(*command)  # type: ignore[no-untyped-call]
                except StopIteration as done:
                    answer = mset(*done.value)
                writer.write(answer)
                await writer.drain()
                await reader.readline()
        except (TimeoutError, ConnectionError, redis.RedisError):
            pass
        finally:
            writer.close()

    return session


async def per_call_launcher(url: str) -> None:
    """Accept, start the script on the connection, reap it. The launcher never reads
    from the socket (an asyncio stream would buffer the environment the script needs)."""
    import socket

    loop = asyncio.get_running_loop()
    listener = socket.create_server((HOST, 0), backlog=1024)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    children: set[asyncio.Task[None]] = set()
    running: set[asyncio.subprocess.Process] = set()

    async def run(conn: socket.socket) -> None:
        conn.setblocking(True)  # sock_accept made it non-blocking: the script reads blocking
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--agi-script", url,
                stdin=conn.fileno(), stdout=conn.fileno())
        finally:
            conn.close()  # our copy only: the script holds the connection now
        running.add(proc)
        try:
            await proc.wait()  # reaped: its CPU counts in our children's time
        finally:
            running.discard(proc)

    async def accept() -> None:
        while True:
            conn, _ = await loop.sock_accept(listener)
            task = loop.create_task(run(conn))
            children.add(task)
            task.add_done_callback(children.discard)

    acceptor = loop.create_task(accept())
    await asyncio.to_thread(sys.stdin.read)  # the bench closes our stdin to stop us
    acceptor.cancel()
    listener.close()
    for proc in running:  # scripts still starting when the row ended: nobody waits for them
        proc.kill()
    if children:
        await asyncio.wait(children, timeout=SESSION_TIMEOUT_S)


def agi_script(url: str) -> None:
    """One call, as a process-per-call AGI script: stdin/stdout are the AGI channel."""
    import redis

    lines = []
    while (line := sys.stdin.buffer.readline()) not in (b"\n", b""):
        lines.append(line)
    env = parse_env(lines)
    client = redis.Redis.from_url(url, socket_timeout=SESSION_TIMEOUT_S)
    steps = rules(env.get("agi_arg_1", ""), env.get("agi_arg_2", ""), datetime.now(UTC))
    reply = None
    try:
        while True:
            reply = client.execute_command(*steps.send(reply))  # type: ignore[no-untyped-call]
    except StopIteration as done:
        answer = mset(*done.value)
    except (OSError, redis.RedisError) as exc:  # as a site's script: the call gets no answer
        raise SystemExit(f"agi script: {exc}") from None
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()
    sys.stdin.buffer.readline()
    client.close()


# --- for bench/workers.py ---------------------------------------------------------------


def seed(url: str, numbers: int) -> None:
    """A consent for +33600000000 .. (``numbers`` of them); 1,000 other numbers listed."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=30)
    expires = (datetime.now(UTC) + timedelta(days=300)).timestamp()
    pipe = client.pipeline(transaction=False)
    for i in range(numbers):
        pipe.hset(f"naive:consent:+336{i:08d}", mapping={
            "professional": PROFESSIONAL, "product_category": "telecom",
            "collected_at": time.time() - 30 * 86400, "expires_at": expires})
        if i % 10_000 == 9_999:
            pipe.execute()
    for name in ("bloctel", "internal"):
        pipe.sadd(f"naive:opposition:{name}", *(f"+337{i:08d}" for i in range(1000)))
    pipe.execute()
    client.close()


@contextlib.contextmanager
def started(*args: str) -> Any:
    """A role of this script in its own process: yields (port, pid); stopped on exit."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("DIALER_GATEWAY_")})
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench/baselines.py {' '.join(args)} did not start")
        yield int(line), proc.pid
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    role = sys.argv[1:2]
    if role == ["--bare"]:
        asyncio.run(serve(bare_session()))
    elif role == ["--bare-redis"]:
        asyncio.run(serve_bare_redis(sys.argv[2]))
    elif role == ["--naive"]:
        asyncio.run(serve(naive_session(sys.argv[2])))
    elif role == ["--per-call"]:
        asyncio.run(per_call_launcher(sys.argv[2]))
    elif role == ["--agi-script"]:
        agi_script(sys.argv[2])
    else:
        raise SystemExit(__doc__)
