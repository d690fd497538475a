"""``[api]``: listener, bearer tokens (secrets) and limits of the scrub/check API."""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_TOKEN_CHARS = 16


@dataclass(frozen=True, slots=True)
class ApiSettings:
    enabled: bool = False
    listen: str = "127.0.0.1:9465"
    # bearer tokens accepted (secrets: redacted in every repr and in `config check`)
    tokens: tuple[str, ...] = field(default=(), repr=False)
    max_body_bytes: int = 64 * 1024 * 1024  # POST /v1/scrub body (Content-Length required)
    max_line_bytes: int = 64 * 1024  # one CSV / JSON line of a scrub body
    rate_per_s: float = 5.0  # requests per second per token (token bucket)...
    rate_burst: int = 20  # ...with this many in reserve
    max_concurrent_scrubs: int = 4  # POST /v1/scrub in flight (more: 503)
    read_timeout_s: float = 30.0  # longest wait for the next piece of a request body
    batch_rows: int = 2000  # rows decided per store round trip
    max_connections: int = 256  # open connections (more: a 503 and closed at once)

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_line_bytes", "rate_burst", "max_concurrent_scrubs",
                     "batch_rows", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("rate_per_s", "read_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.enabled and not self.tokens:
            raise ValueError("enabled but no tokens: set tokens = [\"...\"]")
        if any(len(t) < MIN_TOKEN_CHARS or t != t.strip() for t in self.tokens):
            raise ValueError(f"every token must have at least {MIN_TOKEN_CHARS} characters "
                             "and no surrounding spaces")
