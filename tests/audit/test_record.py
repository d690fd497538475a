"""Audit records: the fields every decision records (docs/audit.md), privacy, context hygiene."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audit.chain import canonical
from gateway.audit.errors import AuditConfigError
from gateway.audit.record import (
    MAX_CONTEXT_ITEMS,
    SCHEMA_VERSION,
    NumberPrivacy,
    _local_times,
    hash_number,
    key_id,
)
from gateway.audit.trail import AuditSettings, open_audit_trail
from gateway.cli import main
from tests.audit.helpers import make_record

KEY = "k" * 32


def test_body_has_every_field_the_law_asks_for() -> None:
    body = make_record(0).to_body(NumberPrivacy("full"))
    assert body["v"] == SCHEMA_VERSION
    assert body["id"] == "d-gw-a-0"
    assert body["ts"] == "2026-09-14T08:30:00.000000Z"
    assert body["local_times"] == {"Europe/Paris": "2026-09-14T10:30:00+02:00"}
    assert body["zones"] == ["Europe/Paris"]
    assert (body["campaign"], body["professional"]) == ("spring-promo", "acme")
    assert (body["number"], body["number_input"]) == ("+33612345678", "06 12 34 56 78")
    assert (body["verdict"], body["reason"]) == ("ALLOW", "ok")
    assert body["engine"] == {"verdict": "ALLOW", "reason": "ok"}
    assert body["pack"] == {"id": "fr-2026-08", "hash": "ab" * 32}
    assert (body["consent_id"], body["contract_id"]) == ("c-42", None)
    assert body["lists"][0] == {"name": "opposition:bloctel", "version": 7, "age_s": 86400}
    assert body["counters"] == {"attempts_seen": 1, "attempts_limit": 4,
                                "attempt_window_s": 2592000}
    assert (body["shadow"], body["fail_open"], body["fail_mode"]) == (False, False, "closed")
    assert body["latency_us"] == 1200
    assert body["source"] == "agi"
    assert body["instance"] == "gw-a"
    assert body["caller_id"] == "+33162000001"
    assert body["trace"][0] == "consent:ok c-42"
    assert body["context"]["uniqueid"] == "1700000000.0"
    # no floats anywhere: the canonical form is unambiguous
    assert "." not in json.dumps(body["latency_us"])
    canonical(body)


def test_secret_context_keys_are_dropped_and_context_is_bounded() -> None:
    ctx = {"channel": "PJSIP/x", "secret": "s3", "ami_password": "p", "auth": "a",
           "api_key": "k", "token": "t"}
    ctx.update({f"extra{i:02d}": "v" for i in range(MAX_CONTEXT_ITEMS + 5)})
    body = make_record(0, context=ctx).to_body(NumberPrivacy("full"))
    text = canonical(body)
    for secret in ("s3", '"p"', "ami_password", "api_key", '"token"'):
        assert secret not in text
    assert len(body["context"]) <= MAX_CONTEXT_ITEMS


def test_hash_mode_keeps_no_clear_number_anywhere() -> None:
    privacy = NumberPrivacy("hash", KEY)
    body = make_record(0).to_body(privacy)
    text = canonical(body)
    for form in ("+33612345678", "0612345678", "612345678", "06 12 34 56 78"):
        assert form not in text, form
    assert body["number"] == hash_number(KEY, "+33612345678")
    assert body["number_input"] is None
    assert body["key_id"] == key_id(KEY) and KEY not in text
    assert body["context"]["channel"] == "PJSIP/<number>@trunk"


def test_hash_mode_of_an_invalid_number_hashes_its_digits() -> None:
    body = make_record(0, number="12-34", e164=None).to_body(NumberPrivacy("hash", KEY))
    assert body["number"] == hash_number(KEY, "1234")


def test_hash_mode_needs_a_key_and_repr_hides_it() -> None:
    with pytest.raises(AuditConfigError):
        NumberPrivacy("hash", None)
    with pytest.raises(AuditConfigError):
        AuditSettings(number_mode="hash")
    with pytest.raises(AuditConfigError, match="redis_url"):
        open_audit_trail(AuditSettings(sink="redis"))
    with pytest.raises(AuditConfigError, match="scheme"):
        open_audit_trail(AuditSettings(sink="redis", redis_url="redis+cluster://h:1"))
    settings = AuditSettings(number_mode="hash", hash_key=KEY, instance_id="gw")
    assert KEY not in repr(settings)
    assert KEY not in repr(NumberPrivacy("hash", KEY))


@pytest.mark.usefixtures("clean_cli_env")  # tests/fixtures/cli_env.py
async def test_a_hash_key_that_is_not_utf8_is_a_configuration_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    """An environment variable holding bytes that are not UTF-8 (os.environ keeps them
    as lone surrogates) as the audit hash_key: ``config check`` said 0 and ``serve``
    started, then every record failed to hash (the key's strict ``encode()``):
    UnicodeEncodeError, each call answered BLOCK through the edge's bug path and
    nothing audited. It is refused when the configuration is read, without the key."""
    key = os.fsdecode(b"k" * 16 + b"\xff" + b"k" * 15)
    with pytest.raises(AuditConfigError, match="hash_key") as raised:
        AuditSettings(sink="jsonl", path=str(tmp_path / "a.jsonl"), number_mode="hash",
                      hash_key=key, instance_id="gw-a", anchor_path="")
    assert key not in str(raised.value)
    monkeypatch.setenv("DIALER_GATEWAY_AUDIT_NUMBER_MODE", "hash")
    monkeypatch.setenv("DIALER_GATEWAY_AUDIT_HASH_KEY", key)
    assert await asyncio.to_thread(main, ["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "hash_key" in err and "Traceback" not in err and key not in err


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        make_record(0, at=datetime(2026, 1, 1))


def test_local_times_cover_each_candidate_zone() -> None:
    times = dict(_local_times(datetime(2026, 12, 1, 9, tzinfo=UTC),
                              ("Indian/Reunion", "Indian/Mayotte", "Nowhere/Zone")))
    assert times == {"Indian/Reunion": "2026-12-01T13:00:00+04:00",
                     "Indian/Mayotte": "2026-12-01T12:00:00+03:00"}
