"""Structured logs: JSON shape, number redaction per mode, secrets never printed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.logs import Redactor, configure_logging

NUMBER = "+33612345678"
SECRET = "hunter2-s3cr3t"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    structlog.reset_defaults()


def capture(**kw: Any) -> io.StringIO:
    out = io.StringIO()
    configure_logging(stream=out, **kw)
    return out


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def emit() -> None:
    structlog.get_logger("gateway.agi.server").info(
        "decision.made", number=NUMBER, e164="0612345678",
        channel="PJSIP/0612345678@trunk", uniqueid="1700000000.42",
        headers={"Number": "06 12 34 56 78", "Secret": SECRET, "CallerIDNum": "0612345678"},
        secret=SECRET, ami_password=SECRET, api_token=SECRET, hash_key=SECRET,
        url=f"redis://:{SECRET}@127.0.0.1:6379/0", campaign="spring-promo",
    )


def test_json_lines_with_iso_utc_timestamp_and_last2_redaction() -> None:
    out = capture(fmt="json", number_redaction="last2")
    emit()
    (rec,) = records(out)
    assert rec["event"] == "decision.made"
    assert rec["level"] == "info"
    assert rec["logger"] == "gateway.agi.server"
    assert rec["timestamp"].endswith("Z") and "T" in rec["timestamp"]
    assert rec["number"] == "+*********78"
    assert rec["e164"] == "********78"
    assert rec["channel"] == "PJSIP/********78@trunk"
    assert rec["uniqueid"] == "1700000000.42"  # not a phone number
    assert rec["headers"]["Number"] == "********78"
    assert rec["headers"]["CallerIDNum"] == "********78"
    assert rec["campaign"] == "spring-promo"
    text = out.getvalue()
    assert SECRET not in text
    assert "612345678" not in text and "12 34 56" not in text
    masked = {rec[k] for k in ("secret", "ami_password", "api_token", "hash_key")}
    assert masked == {"***"}
    assert rec["url"] == "redis://***@127.0.0.1:6379/0"


def test_full_mode_keeps_numbers_but_never_secrets() -> None:
    out = capture(fmt="json", number_redaction="full")
    emit()
    (rec,) = records(out)
    assert rec["number"] == NUMBER
    assert rec["channel"] == "PJSIP/0612345678@trunk"
    assert SECRET not in out.getvalue()


def test_hash_mode_is_keyed_and_consistent() -> None:
    out = capture(fmt="json", number_redaction="hash", hash_key="k1")
    emit()
    (rec,) = records(out)
    assert rec["number"].startswith("#") and len(rec["number"]) == 13
    assert rec["e164"] == rec["headers"]["Number"]  # same digits, same token
    assert "612345678" not in out.getvalue()
    other = capture(fmt="json", number_redaction="hash", hash_key="k2")
    emit()
    assert records(other)[0]["e164"] != rec["e164"]


def test_stdlib_loggers_go_through_the_same_pipeline() -> None:
    out = capture(fmt="json", level="info")
    logging.getLogger("redis.asyncio").warning("dial %s failed, password=%s", "0612345678",
                                               "x")
    logging.getLogger("asyncio").debug("below the level")
    (rec,) = records(out)
    assert rec["logger"] == "redis.asyncio"
    assert rec["level"] == "warning"
    assert rec["event"] == "dial ********78 failed, password=x"
    assert rec["timestamp"].endswith("Z")


def test_exceptions_are_rendered_and_redacted() -> None:
    out = capture(fmt="json")
    try:
        raise RuntimeError("cannot reach 0612345678")
    except RuntimeError:
        structlog.get_logger("t").exception("service.crashed")
    (rec,) = records(out)
    assert "RuntimeError" in rec["exception"]
    assert "0612345678" not in rec["exception"]


def test_configure_is_idempotent() -> None:
    first = capture(fmt="json")
    out = capture(fmt="json")
    structlog.get_logger("t").warning("store.slow", latency_ms=3)
    assert first.getvalue() == ""
    assert len(records(out)) == 1
    marked = [h for h in logging.getLogger().handlers
              if getattr(h, "_dialer_gateway_handler", False)]
    assert len(marked) == 1


def test_level_filters() -> None:
    out = capture(fmt="json", level="warning")
    log = structlog.get_logger("t")
    log.info("agi.session_started")
    log.warning("agi.session_aborted", number=NUMBER)
    assert [r["event"] for r in records(out)] == ["agi.session_aborted"]


def test_console_format_is_redacted_too() -> None:
    out = capture(fmt="console")
    emit()
    text = out.getvalue()
    assert "decision.made" in text
    assert SECRET not in text and "0612345678" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_auto_format_is_json_when_not_a_terminal() -> None:
    out = capture(fmt="auto")
    emit()
    assert records(out)[0]["event"] == "decision.made"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        configure_logging(level="loud")
    with pytest.raises(ValueError):
        configure_logging(number_redaction="some")  # type: ignore[arg-type]


french_mobiles = st.from_regex(r"\A0[67][0-9]{8}\Z")
formats = st.sampled_from([
    lambda n: n, lambda n: "+33" + n[1:], lambda n: "0033" + n[1:],
    lambda n: " ".join(n[i:i + 2] for i in range(0, 10, 2)),
    lambda n: ".".join(n[i:i + 2] for i in range(0, 10, 2)),
    lambda n: "-".join(n[i:i + 2] for i in range(0, 10, 2)),
])


@settings(max_examples=200)
@given(number=french_mobiles, fmt=formats, mode=st.sampled_from(["last2", "hash"]),
       key=st.sampled_from(["number", "e164", "callee", "Number", "channel", "event"]))
def test_no_mobile_number_survives_redaction(number: str, fmt: Any, mode: Any,
                                             key: str) -> None:
    redactor = Redactor(mode, "k")
    shown = fmt(number)
    value = f"PJSIP/{shown}@trunk" if key == "channel" else shown
    out = redactor(None, "info", {key: value})[key]
    if mode == "last2":
        assert "".join(c for c in out if c.isdigit()) == number[-2:]
    else:
        assert "#" in out and number[1:] not in out
