"""Dialer authentication for the AMI proxy: plain and MD5-challenge Login, failure limits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from gateway.ami.codec import AmiMessage
from gateway.ami.settings import ProxyAccount, ProxySettings

# Distinct source addresses remembered by the failure limiter (oldest forgotten first).
MAX_TRACKED_SOURCES = 10000


def new_challenge() -> str:
    return secrets.token_hex(8)


def md5_key(challenge: str, secret: str) -> str:
    return hashlib.md5((challenge + secret).encode(), usedforsecurity=False).hexdigest()


def check_login(
    message: AmiMessage,
    settings: ProxySettings,
    *,
    peer_host: str,
    challenge: str | None,
) -> ProxyAccount | None:
    """The account a ``Login`` authenticates, or None. Constant-time secret checks."""
    name = message.get("Username") or ""
    account = settings.account(name)
    # Compare against something even for unknown users (no user enumeration by timing).
    secret = account.secret if account is not None else "\0unknown\0"
    auth_type = (message.get("AuthType") or "").lower()
    if auth_type == "md5":
        key = (message.get("Key") or "").lower()
        if challenge is None:
            return None
        ok = hmac.compare_digest(key.encode(), md5_key(challenge, secret).encode())
    elif auth_type in ("", "plain"):
        given = message.get("Secret") or ""
        ok = hmac.compare_digest(given.encode(), secret.encode())
    else:
        return None
    if not ok or account is None or not account.permits(peer_host):
        return None
    return account


class FailedLogins:
    """Counts failed logins per source address within a window (monotonic clock)."""

    def __init__(
        self,
        *,
        limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = MAX_TRACKED_SOURCES,
    ) -> None:
        self._limit = limit
        self._window = window_s
        self._clock = clock
        self._max_sources = max_sources
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()

    def configure(self, *, limit: int, window_s: float) -> None:
        """New limits (a configuration reload); failures already counted are kept."""
        self._limit = limit
        self._window = window_s

    def _recent(self, source: str) -> deque[float]:
        q = self._fails.get(source)
        if q is None:
            return deque()
        horizon = self._clock() - self._window
        while q and q[0] <= horizon:
            q.popleft()
        if not q:
            del self._fails[source]
        return q

    def blocked(self, source: str) -> bool:
        return len(self._recent(source)) >= self._limit

    def record_failure(self, source: str) -> None:
        q = self._recent(source)
        if source not in self._fails:
            self._fails[source] = q
            while len(self._fails) > self._max_sources:
                self._fails.popitem(last=False)
        self._fails.move_to_end(source)
        q.append(self._clock())

    def record_success(self, source: str) -> None:
        self._fails.pop(source, None)
