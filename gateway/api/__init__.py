"""The scrub and check HTTP API (``[api]``, off by default; docs/api.md)."""

from gateway.api.settings import ApiSettings

__all__ = ["ApiSettings"]
