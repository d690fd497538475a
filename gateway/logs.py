"""Structured logs: structlog configured once, numbers and secrets redacted.

Usage everywhere else::

    log = structlog.get_logger(__name__)
    log.info("agi.session_aborted", number=e164, reason="eof")

Events are dotted names; phone numbers go under ``number``/``e164`` (or another key
of :data:`NUMBER_KEYS`); secrets are never logged, and if they are, keys matching
:data:`SECRET_KEY_PATTERN` print ``***``. Standard-library loggers (redis, asyncio,
panoramisk) go through the same formatter and the same redaction.

Logs are not the audit trail (see gateway/audit): they may be sampled, lost or
rotated away; the audit trail may not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from gateway.redact import SECRET_NAME_PATTERN, is_secret_name, redact_text

LogFormat = Literal["json", "console", "auto"]
Redaction = Literal["full", "last2", "hash"]

NUMBER_KEYS = frozenset({
    "number", "numbers", "e164", "callee", "caller_id", "callerid", "calleridnum",
    "callerid_num", "connectedlinenum", "exten", "extension", "dnid", "rdnis", "phone",
    "msisdn", "destination", "number_input",
})
# free-text keys in which phone-number-looking substrings are redacted
TEXT_KEYS = frozenset({
    "event", "channel", "dialstring", "dial_string", "message", "msg", "detail", "line",
    "data", "error", "exception", "destchannel", "application", "appdata", "trace",
})
SECRET_KEY_PATTERN = SECRET_NAME_PATTERN  # kept for importers; see gateway.redact
PHONE_PATTERN = re.compile(
    r"(?<![\w.:])(?:\+|00)?\d(?: ?\d){7,16}(?![\w.:])"  # 8+ digits, optional spaces
    r"|(?<![\w.:])0\d(?:[.\- ]\d\d){4}(?![\w.:])"  # French 06.12.34.56.78 / 06-12-...
)
MAX_REDACT_DEPTH = 4  # nested dicts/lists walked by the redactor
_HANDLER_MARK = "_dialer_gateway_handler"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}
_process_hash_key = secrets.token_bytes(32)  # hash mode without a configured key


class Redactor:
    """structlog processor: numbers per ``mode``, secrets always ``***``."""

    def __init__(self, mode: Redaction = "last2", hash_key: str | None = None) -> None:
        if mode not in ("full", "last2", "hash"):
            raise ValueError(f"number_redaction must be full, last2 or hash, not {mode!r}")
        self.mode = mode
        self._key = hash_key.encode() if hash_key else _process_hash_key

    def __repr__(self) -> str:
        return f"Redactor(mode={self.mode!r})"

    def number(self, value: str) -> str:
        """Redact one phone number (any formatting)."""
        if self.mode == "full":
            return value
        digits = "".join(c for c in value if c.isdigit())
        if not digits:
            return value
        if self.mode == "hash":
            return "#" + hmac.new(self._key, digits.encode(), hashlib.sha256).hexdigest()[:12]
        keep = digits[-2:] if len(digits) > 4 else ""
        return ("+" if value.lstrip().startswith("+") else "") + "*" * (
            len(digits) - len(keep)) + keep

    def text(self, value: str) -> str:
        value = redact_text(value)  # URL user-info and secret query parameters
        if self.mode == "full":
            return value
        return PHONE_PATTERN.sub(lambda m: self.number(m.group(0)), value)

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        for key in list(event_dict):
            if not key.startswith("_"):
                event_dict[key] = self._value(key, event_dict[key], 0)
        return event_dict

    def _value(self, key: Any, value: Any, depth: int) -> Any:
        k = str(key).lower().removeprefix("agi_")
        if is_secret_name(k):
            return "***" if value not in (None, "") else value
        if depth >= MAX_REDACT_DEPTH:
            return value
        if isinstance(value, Mapping):
            return {kk: self._value(kk, vv, depth + 1) for kk, vv in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(key, v, depth + 1) for v in value]
        if k in NUMBER_KEYS and isinstance(value, str | int) and not isinstance(value, bool):
            return self.number(str(value))
        if isinstance(value, str) and (k in TEXT_KEYS or "://" in value):
            return self.text(value)
        return value


def _drop_color_message(logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)  # uvicorn-style duplicates of the message
    return event_dict


def configure_logging(level: str = "info", fmt: LogFormat = "auto",
                      number_redaction: Redaction = "last2", hash_key: str | None = None,
                      *, stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger; calling it again reconfigures
    (one handler, never two). ``auto`` is console output on a terminal, JSON otherwise."""
    lvl = _LEVELS.get(level.lower())
    if lvl is None:
        raise ValueError(f"log level must be one of {sorted(_LEVELS)}, not {level!r}")
    if fmt not in ("json", "console", "auto"):
        raise ValueError(f"log format must be json, console or auto, not {fmt!r}")
    redactor = Redactor(number_redaction, hash_key)
    out = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if _isatty(out) else "json"
    renderer: Processor = (structlog.processors.JSONRenderer() if fmt == "json"
                           else structlog.dev.ConsoleRenderer(colors=_isatty(out)))
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_color_message,
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(lvl)


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
