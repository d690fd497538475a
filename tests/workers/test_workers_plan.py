"""Pure parts of the worker processes: how many, which audit chain and file, which
settings need a restart, the control channel's framing."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.reload import effective_config, restart_needed
from gateway.workers import (
    MAX_FRAME_BYTES,
    audit_path,
    chain_id,
    decode_config,
    decode_json,
    encode_config,
    encode_json,
    existing_audit_files,
    read_frame,
    resolve_workers,
)

REDIS = {"store": {"url": "redis://127.0.0.1:1/0"}}


def test_default_is_one_per_core_with_redis_and_one_with_memory() -> None:
    assert resolve_workers(load_config(env={}, overrides=REDIS), cores=8) == 8
    assert resolve_workers(load_config(env={}), cores=8) == 1  # memory://
    explicit = load_config(env={}, overrides={**REDIS, "service": {"workers": 3}})
    assert resolve_workers(explicit, cores=8) == 3


def test_memory_store_refuses_more_than_one_worker() -> None:
    with pytest.raises(ConfigError, match=r"service.workers = 2: the memory store lives in one "
                                          r"process, so it needs workers = 1"):
        load_config(env={}, overrides={"service": {"workers": 2}})
    assert load_config(env={}, overrides={"service": {"workers": 1}}).service.workers == 1


@pytest.mark.parametrize("bad", [-1, 65])
def test_worker_count_is_bounded(bad: int) -> None:
    with pytest.raises(ConfigError, match=r"service\.workers: must be 0"):
        load_config(env={}, overrides={**REDIS, "service": {"workers": bad}})


@pytest.mark.parametrize("hang", [0.0, 5.0, 30.0, 3600.0])
def test_worker_hang_accepts_never_and_five_seconds_to_an_hour(hang: float) -> None:
    cfg = load_config(env={}, overrides={**REDIS, "service": {"worker_hang_s": hang}})
    assert cfg.service.worker_hang_s == hang


@pytest.mark.parametrize("bad", [-1.0, 2.0, 4.9, 3601.0])
def test_worker_hang_below_the_supervisors_own_waits_is_refused(bad: float) -> None:
    """Under 5 s a loaded worker answering the supervisor's 2 s question late could be
    taken for a hung one and killed with its calls."""
    with pytest.raises(ConfigError, match=r"service\.worker_hang_s: must be 0"):
        load_config(env={}, overrides={**REDIS, "service": {"worker_hang_s": bad}})


def test_worker_hang_is_reloaded_not_restart_only() -> None:
    running = load_config(env={}, overrides={**REDIS})
    loaded = load_config(env={}, overrides={**REDIS, "service": {"worker_hang_s": 60.0}})
    assert effective_config(running, loaded).service.worker_hang_s == 60.0


def test_worker_settings_come_from_file_and_environment(tmp_path: Path) -> None:
    conf = tmp_path / "g.toml"
    conf.write_text('[store]\nurl = "redis://127.0.0.1:1/0"\n[service]\nworkers = 4\n'
                    'worker_socket = "reuseport"\n')
    cfg = load_config(conf, env={})
    assert (cfg.service.workers, cfg.service.worker_socket) == (4, "reuseport")
    assert load_config(conf, env={"DIALER_GATEWAY_SERVICE_WORKERS": "2"}).service.workers == 2
    conf.write_text('[service]\nworker_socket = "fork"\n')
    with pytest.raises(ConfigError, match="worker_socket"):
        load_config(conf, env={})


def test_worker_count_and_socket_need_a_restart() -> None:
    running = load_config(env={}, overrides={**REDIS, "service": {"workers": 2}})
    loaded = dataclasses.replace(running, service=dataclasses.replace(
        running.service, workers=4, worker_socket="reuseport", decision_budget_ms=100.0))
    assert restart_needed(running, loaded) == ("service.workers", "service.worker_socket")
    kept = effective_config(running, loaded).service
    assert (kept.workers, kept.worker_socket, kept.decision_budget_ms) == (2, "shared", 100.0)


def test_each_worker_has_its_own_chain_and_file() -> None:
    assert chain_id("gw1", 0) == "gw1-w0"
    assert audit_path("/var/lib/dialer-gateway/audit.jsonl", 1) == \
        "/var/lib/dialer-gateway/audit-w1.jsonl"
    assert audit_path("/x/audit.jsonl.head", 2) == "/x/audit.jsonl-w2.head"


def test_existing_audit_files_finds_every_worker_file(tmp_path: Path) -> None:
    base = str(tmp_path / "audit.jsonl")
    assert existing_audit_files(base, None) == []  # single-process layout
    for name in ("audit-w1.jsonl", "audit-w0.jsonl", "audit-w10.jsonl", "audit-wx.jsonl",
                 "audit.jsonl"):
        (tmp_path / name).write_text("")
    assert existing_audit_files(base, None) == [
        (base, None), (str(tmp_path / "audit-w0.jsonl"), None),
        (str(tmp_path / "audit-w1.jsonl"), None), (str(tmp_path / "audit-w10.jsonl"), None)]
    head = str(tmp_path / "h.head")
    assert existing_audit_files(base, head)[1] == (str(tmp_path / "audit-w0.jsonl"),
                                                   str(tmp_path / "h-w0.head"))


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def test_control_frames_round_trip_and_refuse_oversize() -> None:
    config = load_config(env={}, overrides=REDIS)

    async def scenario() -> None:
        reader = _reader(encode_config(config) + encode_json({"type": "reload", "id": 7}))
        assert decode_config(await read_frame(reader)) == config
        assert decode_json(await read_frame(reader)) == {"type": "reload", "id": 7}
        with pytest.raises(asyncio.IncompleteReadError):
            await read_frame(reader)
        with pytest.raises(ValueError, match="control frame of"):
            await read_frame(_reader((MAX_FRAME_BYTES + 1).to_bytes(4, "big")))
        with pytest.raises(ValueError, match="not a JSON object"):
            decode_json(b"[1]")

    asyncio.run(scenario())
