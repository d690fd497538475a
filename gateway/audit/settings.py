"""``[audit]`` settings: what the configuration needs of the audit trail.

Apart from :mod:`gateway.audit.trail` so that loading a configuration does not load the
trail, its sinks and its readers (a CLI command that writes no audit record, such as
``check``, starts without them: docs/benchmarks.md, CLI start-up).
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from typing import Literal

from gateway.audit.errors import AuditConfigError
from gateway.audit.record import NumberMode, NumberPrivacy
from gateway.store.keys import audit_stream_key

SinkKind = Literal["jsonl", "redis", "none"]
DEFAULT_ANCHOR_INTERVAL_S = 60.0
DEFAULT_ANCHOR_FILE_INTERVAL_S = 0.05  # Redis sink: at most one anchor file write per interval


@dataclass(frozen=True)
class AuditSettings:
    """Audit configuration (``[audit]`` in the TOML file). ``hash_key`` is a secret."""

    sink: SinkKind = "jsonl"
    path: str = "var/audit.jsonl"
    head_path: str | None = None  # default: path + ".head"
    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    # None: ``<store.key_prefix>:audit`` when the gateway wires it (gateway.store.keys),
    # ``dg:audit`` for a trail opened on its own
    stream_key: str | None = None
    maxlen: int | None = None  # XADD MAXLEN ~ (None: no count trimming)
    retention_s: int | None = None  # XTRIM MINID ~ now - retention (None: keep all)
    number_mode: NumberMode = "full"
    hash_key: str | None = field(default=None, repr=False)
    fsync: bool = False
    write_timeout_s: float = 0.2
    instance_id: str = field(default_factory=socket.gethostname)
    max_pending: int = 1000  # appends waiting for the sink before AuditUnavailable
    read_page_size: int = 500  # XRANGE COUNT when reading the stream back
    read_timeout_s: float = 5.0  # per page / per heads read
    # second, independent copy of the chain heads (None: default place; "": none)
    anchor_path: str | None = None
    anchor_interval_s: float = DEFAULT_ANCHOR_INTERVAL_S  # audit.anchor log line + gauge
    # Redis sink: the anchor file gets the latest head at most once per interval (0: as
    # soon as the anchor thread is free, about once per record)
    anchor_file_interval_s: float = DEFAULT_ANCHOR_FILE_INTERVAL_S

    def __post_init__(self) -> None:
        if self.sink not in ("jsonl", "redis", "none"):
            raise AuditConfigError(f"audit sink must be jsonl, redis or none, not {self.sink!r}")
        if not self.instance_id:
            raise AuditConfigError("instance_id must not be empty")
        for name in ("write_timeout_s", "read_timeout_s", "anchor_interval_s"):
            if not getattr(self, name) > 0:
                raise AuditConfigError(f"{name} must be > 0")
        if not 0 <= self.anchor_file_interval_s <= 60:
            raise AuditConfigError("anchor_file_interval_s must be between 0 and 60")
        for name in ("max_pending", "read_page_size"):
            if getattr(self, name) < 1:
                raise AuditConfigError(f"{name} must be >= 1")
        if self.maxlen is not None and self.maxlen < 1:
            raise AuditConfigError("maxlen must be >= 1 (or None: no count trimming)")
        if self.retention_s is not None and self.retention_s < 0:
            raise AuditConfigError("retention_s must be >= 0 (or None: keep everything)")
        NumberPrivacy(self.number_mode, self.hash_key)  # validates mode and key
        anchor = self.resolved_anchor_path
        if anchor is not None and os.path.abspath(anchor) in (
                os.path.abspath(self.path), os.path.abspath(self.resolved_head_path)):
            raise AuditConfigError("anchor_path must differ from path and head_path")

    @property
    def resolved_stream_key(self) -> str:
        """The Redis stream: ``stream_key``, else the default prefix's (``dg:audit``)."""
        return audit_stream_key(self.stream_key)

    @property
    def resolved_head_path(self) -> str:
        return self.head_path or self.path + ".head"

    @property
    def resolved_anchor_path(self) -> str | None:
        """Where the anchor file is (None: no anchor file). Default: a directory of its
        own beside the trail, ``<dir of path>/anchor/<file or stream>.anchor``."""
        if self.anchor_path == "" or self.sink == "none":
            return None
        if self.anchor_path is not None:
            return self.anchor_path
        name = (os.path.basename(self.path) if self.sink == "jsonl"
                else re.sub(r"[^A-Za-z0-9_.-]", "_", self.resolved_stream_key))
        return os.path.join(os.path.dirname(self.path), "anchor", name + ".anchor")

    @property
    def trimmed(self) -> bool:
        """Whether the sink may drop the oldest records (verify accepts a trimmed prefix)."""
        return self.sink == "redis" and (self.maxlen is not None or self.retention_s is not None)
