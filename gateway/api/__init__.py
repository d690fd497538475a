"""The scrub and check HTTP API (``[api]``, off by default; docs/scrub.md, "HTTP API")."""

from gateway.api.settings import ApiSettings

__all__ = ["ApiSettings"]
