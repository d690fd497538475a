"""``dialer-gateway serve`` with ``[service] workers = 2`` on a real redis-server.

One supervisor and two worker processes on one FastAGI port: calls land on both
workers (the audit chain of each record names its worker), /metrics sums both,
a SIGHUP reload reaches both, a killed worker is restarted while calls keep being
answered, and SIGTERM drains both (calls in flight complete). Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agi_client import agi_screen
from tests.workers.support import DEADLINE_S, Served, serve, wait_for, write

NUMBER = "06 55 55 55 55"  # no consent in the demo lists: BLOCK no_consent, never counted
ENV = (
    "agi_network: yes\nagi_network_script: screen\nagi_request: agi://x/screen\n"
    "agi_channel: Local/test-00000001;2\nagi_uniqueid: 1700000000.1\n"
    "agi_arg_1: {number}\nagi_arg_2: {campaign}\n\n"
)


@pytest.fixture
def served(tmp_path: Path, redis_url: str, key_prefix: str) -> Iterator[Served]:
    yield from serve(tmp_path, redis_url, key_prefix, "demo")


def calls(served: Served, n: int, campaign: str = "demo") -> list[dict[str, str]]:
    async def many() -> list[dict[str, str]]:
        return list(await asyncio.gather(
            *(agi_screen(served.agi, NUMBER, campaign) for _ in range(n))))
    return asyncio.run(many())


def chains_answering(served: Served, campaign: str, reason: str) -> set[str]:
    """Call in batches of 8 until both workers answered (or the deadline): the chains seen."""
    seen: set[str] = set()

    def both() -> bool:
        answers = calls(served, 8, campaign)
        assert {(a["GW_VERDICT"], a["GW_REASON"]) for a in answers} == {("BLOCK", reason)}
        chains = served.worker_of()
        seen.update(chains[a["GW_DECISION_ID"]] for a in answers)
        return seen == {"gwt-w0", "gwt-w1"}

    wait_for(both, f"calls answered by both workers (seen {seen})")
    return seen


def test_calls_metrics_reload_restart_on_two_workers(served: Served, tmp_path: Path) -> None:
    ready = served.until("READY")[-1]
    assert ready["READY"] == "1" and "2 workers" in ready["STATUS"]
    doc = served.readyz()
    assert doc["ready"] is True and doc["store"] == "up"
    pids = {w["index"]: w["pid"] for w in doc["workers"]}
    assert sorted(pids) == [0, 1] and len(set(pids.values())) == 2
    assert served.proc.pid not in pids.values()

    # calls land on both workers; every one is recorded in its worker's own chain and file
    chains_answering(served, "demo", "no_consent")
    records = served.records()
    assert {r["instance"] for r in records} == {"gwt-w0", "gwt-w1"}
    # /metrics is the sum of both workers' counters
    assert served.metric('dialer_gateway_decisions_total{campaign="demo",reason="no_consent",'
                         'source="agi",verdict="BLOCK"}') == len(records)
    assert served.metric('dialer_gateway_workers{state="ready"}') == 2
    assert served.metric("dialer_gateway_store_up ") == 1

    # a reload (SIGHUP to the supervisor) reaches both workers
    assert calls(served, 1, "spring")[0]["GW_REASON"] == "campaign_unknown"
    write(served.conf, served.toml("demo", "spring"))
    served.proc.send_signal(signal.SIGHUP)
    assert served.next_message()["RELOADING"] == "1"
    after = served.next_message()
    assert after["READY"] == "1" and "FAILED" not in after["STATUS"]
    chains_answering(served, "spring", "no_consent")  # campaign known on both workers
    assert served.metric('dialer_gateway_config_reloads_total{result="success"}') == 1
    # POST /-/reload and `dialer-gateway reload` report every worker's result
    doc = post_reload(served)
    assert doc["result"] == "success" and len(doc["workers"]) == 2
    assert {w["result"] for w in doc["workers"]} == {"success"}
    assert {w["config_hash"] for w in doc["workers"]} == {doc["config_hash"]}
    assert {w["pid"] for w in doc["workers"]} == set(pids.values())
    done = served.cli("reload")
    assert done.returncode == 0 and b"reloaded: config" in done.stdout, done.stderr
    assert served.metric('dialer_gateway_config_reloads_total{result="success"}') == 3
    for _ in range(2):  # systemd saw both: RELOADING=1, then READY=1
        assert served.next_message()["RELOADING"] == "1"
        assert "FAILED" not in served.next_message()["STATUS"]

    # a refused reload (bad file) is reported once, and both workers keep the running config
    write(served.conf, "[campaigns.broken]\n")
    served.proc.send_signal(signal.SIGHUP)
    assert served.next_message()["RELOADING"] == "1"
    assert "last reload FAILED" in served.next_message()["STATUS"]
    assert served.metric('dialer_gateway_config_reloads_total{result="error"}') == 1
    chains_answering(served, "spring", "no_consent")

    # a killed worker is restarted, and calls keep being answered meanwhile
    os.kill(pids[1], signal.SIGKILL)
    answered = 0

    def restarted() -> bool:
        nonlocal answered
        answers = calls(served, 4)
        answered += sum(a["GW_REASON"] == "no_consent" for a in answers)
        assert len(answers) == 4
        doc = served.readyz()
        new = {w["index"]: w["pid"] for w in doc["workers"]}
        return bool(doc["ready"]) and new[1] not in (None, pids[1]) and new[0] == pids[0]

    wait_for(restarted, "worker 1 restarted")
    assert answered >= 4
    assert served.metric("dialer_gateway_worker_restarts_total") == 1
    # one series per instance, none per process: the dead worker's gauges are gone
    # (alerts.yml matches `on (job, instance, list)`: one series a side)
    assert 'pid="' not in served.get("/metrics")[1].decode()
    assert served.metric('dialer_gateway_list_entries{list="opposition:bloctel"}') == 2
    assert "supervisor.worker_died" in served.log_text()
    chains_answering(served, "spring", "no_consent")  # the new worker 1 took the reload too

    # the audit trail verifies: one intact chain per worker, continued across the restart
    write(tmp_path / "verify.toml", served.toml("demo"))  # the served file is broken above
    verify = served.cli("audit", "verify", config=tmp_path / "verify.toml")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert b'"gwt-w0"' in verify.stdout and b'"gwt-w1"' in verify.stdout

    served.proc.send_signal(signal.SIGTERM)
    assert served.until("STOPPING")[-1]["STOPPING"] == "1"
    assert served.proc.wait(timeout=DEADLINE_S) == 0




async def hold_call(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """A call whose decision is made (and audited) but whose answer is not acknowledged:
    the session stays in flight until :func:`finish_call`."""
    reader, writer = await asyncio.open_connection(*served.agi)
    writer.write(ENV.format(number=NUMBER, campaign="demo").encode())
    await writer.drain()
    async with asyncio.timeout(DEADLINE_S):
        line = (await reader.readline()).decode()
    assert line.startswith('EXEC "MSet"'), line
    decision_id = line.split("GW_DECISION_ID=", 1)[1].split(",", 1)[0].strip('"\n')
    return reader, writer, decision_id


async def finish_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Acknowledge every command until the gateway ends the session; what it sent."""
    rest = b""
    async with asyncio.timeout(DEADLINE_S):
        writer.write(b"200 result=0\n")
        await writer.drain()
        while line := await reader.readline():
            rest += line
            writer.write(b"200 result=0\n")
            await writer.drain()
    writer.close()
    return rest


def test_sigterm_drains_every_worker(served: Served) -> None:
    served.until("READY")

    async def scenario() -> int:
        held = []
        while len(held) < 40:  # until calls are in flight on both workers
            held.append(await hold_call(served))
            chains = served.worker_of()
            if {chains[d] for _, _, d in held} == {"gwt-w0", "gwt-w1"}:
                break
        assert {served.worker_of()[d] for _, _, d in held} == {"gwt-w0", "gwt-w1"}
        served.proc.send_signal(signal.SIGTERM)
        assert served.until("STOPPING")[-1]["STOPPING"] == "1"
        # every worker is draining (it stopped accepting) with our calls in flight ...
        wait_for(lambda: len(draining(served)) == 2, "both workers draining")
        assert served.proc.poll() is None  # ... and they hold the gateway up
        for reader, writer, _ in held:
            assert await finish_call(reader, writer) == b""  # ended cleanly by the gateway
        return len(held)

    held_calls = asyncio.run(scenario())
    assert served.proc.wait(timeout=DEADLINE_S) == 0
    log = served.log_text()
    drained = draining(served)
    assert sorted(d["worker"] for d in drained) == [0, 1], drained
    assert sum(d["sessions"] for d in drained) == held_calls  # all in flight at SIGTERM
    assert "agi.shutdown_cancelled" not in log and "agi.session_aborted" not in log


def draining(served: Served) -> list[dict[str, Any]]:
    return served.events("agi.draining")


def post_reload(served: Served) -> dict[str, Any]:
    request = urllib.request.Request(f"http://{served.http[0]}:{served.http[1]}/-/reload",
                                     method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=DEADLINE_S) as response:  # noqa: S310 - loopback
        doc: dict[str, Any] = json.loads(response.read())
    return doc


def started_loops(served: Served) -> list[str]:
    """The ``event_loop`` of every ``gateway.started`` line (one per worker start)."""
    return [e["event_loop"] for e in served.events("gateway.started")]


@pytest.mark.parametrize(("chosen", "other"), [("auto", "asyncio"), ("asyncio", "uvloop")])
def test_workers_on_the_chosen_loop_decide_on_redis_and_a_reload_keeps_their_loop(
        tmp_path: Path, redis_url: str, key_prefix: str, chosen: str, other: str) -> None:
    """``[service] event_loop`` reaches every worker, which decide on the Redis store:
    ``auto`` (the default) is uvloop here, where it is installed (on uvloop, the lean
    Redis client's connections once all failed: no worker became ready), ``asyncio``
    asyncio's own loop; a reload that names another loop reports it as needing a restart
    and leaves the workers on theirs."""
    running = "uvloop" if chosen == "auto" else chosen
    gen = serve(tmp_path, redis_url, key_prefix, "demo", event_loop=chosen)
    served = next(gen)
    try:
        assert served.until("READY")[-1]["READY"] == "1"
        chains_answering(served, "demo", "no_consent")  # both workers, through Redis
        assert started_loops(served) == [running, running]
        served.event_loop = other
        write(served.conf, served.toml("demo"))
        doc = post_reload(served)
        assert doc["result"] == "success"
        assert "service.event_loop" in doc["restart_needed"], doc
        chains_answering(served, "demo", "no_consent")
        assert started_loops(served) == [running, running]  # no worker restarted
    finally:
        gen.close()
