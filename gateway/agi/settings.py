"""Settings of the FastAGI edge (frozen; the integrator maps ``[agi]`` of the TOML onto them).

Every limit and timeout below is listed with its default in docs/agi.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.agi.limits import (
    DEFAULT_MAX_ENV_BYTES,
    DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_USAGE_LINES,
)


@dataclass(frozen=True, slots=True)
class AgiSettings:
    """Limits of the FastAGI server (listed with their defaults in docs/agi.md)."""

    max_sessions: int = 256  # sessions past their environment; beyond: answered `overloaded`
    max_pending: int = 8192  # connections still reading their environment; beyond: shed oldest
    max_pending_per_source: int = 1024  # the same, per peer address
    # connect -> environment read: a session that waited longer (the loop late on its
    # queue) is answered `overloaded` (BLOCK timeout) at once, unscreened. 1 s: a call
    # read later could not be screened (250 ms budget + audit write) before the 1.5 s
    # screen deadline anyway, while a burst of 250 calls at once (the field tier's) is
    # read well within it
    max_queue_wait_s: float = 1.0
    # a pending connection shed for a newer one: its environment, if it comes within this,
    # is answered `overloaded`; an idler is closed then (outcome `shed`)
    shed_grace_s: float = 1.0
    env_deadline_s: float = 2.0  # connect -> blank line ending the environment
    # pending connections closed at env_deadline_s in one turn of the event loop, at most
    # (the rest in the next turns): a wave of idlers falling due together cannot hold
    # the loop, and the real calls waiting in their sockets, for the whole wave
    expire_per_turn: int = 64
    reply_deadline_s: float = 2.0  # one command: write + final reply
    session_deadline_s: float = 10.0  # connect -> close, whatever happens
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    max_usage_lines: int = DEFAULT_MAX_USAGE_LINES
    max_env_bytes: int = DEFAULT_MAX_ENV_BYTES  # the whole environment (all its lines)
    read_chunk_bytes: int = 4096  # one socket read
    # events (lines) received that the session has not read yet: reading pauses beyond
    # (a peer flooding replies or HANGUPs cannot grow a queue; bytes are bounded by the
    # parser's max_line_bytes)
    max_unread_events: int = 64
    shutdown_grace_s: float = 5.0  # serve(): in-flight sessions may finish for this long
    cancel_deadline_s: float = 1.0  # after the grace: how long cancelled sessions may take
    backlog: int = 1024  # listen(2) backlog: a burst's SYNs are queued, not dropped
    # connections accepted in one turn of the event loop, at most (the rest in the next
    # turns): a flood of reconnecting idlers cannot hold the loop for a whole backlog
    accept_per_turn: int = 128

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_pending", "max_pending_per_source", "expire_per_turn",
                     "max_line_bytes",
                     "max_headers", "max_usage_lines", "max_env_bytes", "read_chunk_bytes",
                     "max_unread_events", "backlog", "accept_per_turn"):
            if getattr(self, name) < 1:
                raise ValueError(f"agi.{name} must be at least 1")
        for name in ("env_deadline_s", "reply_deadline_s", "session_deadline_s",
                     "cancel_deadline_s", "max_queue_wait_s", "shed_grace_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"agi.{name} must be positive")
        if self.shutdown_grace_s < 0:
            raise ValueError("agi.shutdown_grace_s must not be negative")
        if self.max_line_bytes < 16:
            raise ValueError("agi.max_line_bytes must be at least 16")
