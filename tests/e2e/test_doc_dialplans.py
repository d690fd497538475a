"""The documentation's dialplans (``<!-- doc-test: dialplan -->``), verbatim, in a real
Asterisk 22 in front of the real gateway.

A complete block (``[context]`` lines) is the whole extensions.conf of its own Asterisk,
plus two contexts of this test: ``doc-callee``, where the block's ``Dial(PJSIP/...@trunk)``
arrives (a PJSIP endpoint ``trunk`` on the same Asterisk, over loopback SIP: it answers and
stays ``CALLEE_HOLD_S`` seconds, then hangs up with cause 16), and ``doc-hold`` (the
originated channel's other end). The one rewrite is the gateway's address:
``agi://127.0.0.1:4573`` becomes the test gateway's (it listens on a free port).

An allowed call must last until the callee hangs up — more than 30 s, past the
``TIMEOUT(absolute)`` a screening step sets (a README that never cleared it cut every
allowed call at 30 s, cause 21). A blocked call must never reach the trunk.

A ``fragment`` block (priorities without a context) is loaded inside a context of its
own and must show all its priorities in ``dialplan show``.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.docs.blocks import Block, blocks
from tests.e2e.ami_harness import AmiClient, CallResult, originate, wait_calls_done
from tests.e2e.asterisk_conf import MODULES, modules_conf
from tests.e2e.asterisk_server import AsteriskServer, chroot_root, free_port
from tests.e2e.gateway_runner import RunningGateway, running_gateway

DOC_AGI = "agi://127.0.0.1:4573"
CALLEE_HOLD_S = 32  # > the 30 s a forgotten TIMEOUT(absolute)=30 would allow
CALL_DEADLINE_S = CALLEE_HOLD_S + 30.0
PJSIP_MODULES = ("res_sorcery_config.so", "res_sorcery_memory.so", "res_sorcery_astdb.so",
                 "res_pjproject.so", "res_pjsip.so", "res_pjsip_session.so",
                 "res_pjsip_pubsub.so", "res_pjsip_endpoint_identifier_ip.so",
                 "res_pjsip_sdp_rtp.so", "res_rtp_asterisk.so", "chan_pjsip.so", "codec_ulaw.so")
ALLOWED = "0612345678"
BLOCKED = "0698765432"
CONTEXT = re.compile(r"^\[([^\]]+)\]", re.MULTILINE)

PJSIP_CONF = """\
[transport-loopback]
type = transport
protocol = udp
bind = 127.0.0.1:{port}

[trunk]
type = aor
contact = sip:127.0.0.1:{port}

[trunk]
type = endpoint
transport = transport-loopback
context = doc-callee
disallow = all
allow = ulaw
aors = trunk
direct_media = no
rtp_ipv6 = no

[trunk]
type = identify
endpoint = trunk
match = 127.0.0.1
"""
TEST_CONTEXTS = f"""
[doc-callee]
exten => _[+0-9].,1,UserEvent(DgSinkReached,Number: ${{EXTEN}})
 same => n,Answer()
 same => n,Wait({CALLEE_HOLD_S})
 same => n,UserEvent(DgCalleeDone,Number: ${{EXTEN}})
 same => n,Hangup(16)

[doc-hold]
exten => s,1,Wait({CALLEE_HOLD_S * 2})
 same => n,Hangup(16)
"""


def complete_blocks() -> list[Block]:
    return [b for b in blocks("dialplan") if "fragment" not in b.options]


def fragment_blocks() -> list[Block]:
    return [b for b in blocks("dialplan") if "fragment" in b.options]


def doc_asterisk(extensions: str) -> AsteriskServer:
    port = free_port()
    server = AsteriskServer(chroot_root(), extensions=extensions,
                            extra_files={"pjsip.conf": PJSIP_CONF.format(port=port)})
    (server.host_dir / "etc" / "modules.conf").write_text(
        modules_conf(tuple(m for m in PJSIP_MODULES if m not in MODULES)))
    return server


@pytest.fixture(scope="module", params=complete_blocks(), ids=str)
def block_asterisk(request: pytest.FixtureRequest,
                   asterisk: AsteriskServer) -> Iterator[tuple[Block, AsteriskServer]]:
    """One Asterisk per complete block (``asterisk``: only for its availability checks)."""
    block: Block = request.param
    assert DOC_AGI in block.text, f"{block.where}: the dialplan does not call {DOC_AGI}"
    server = doc_asterisk(block.text + TEST_CONTEXTS)
    try:
        server.start()
        yield block, server
    finally:
        server.cleanup()


@pytest.fixture
async def gw(block_asterisk: tuple[Block, AsteriskServer],
             tmp_path: Path) -> AsyncIterator[tuple[Block, AsteriskServer, RunningGateway]]:
    block, server = block_asterisk
    campaigns = tuple(sorted(set(re.findall(r"Set\(CAMPAIGN=([\w-]+)\)", block.text))))
    assert campaigns, f"{block.where}: no Set(CAMPAIGN=...) in the dialplan"
    async with running_gateway(tmp_path, campaigns=campaigns) as gateway:
        await gateway.consent("+33612345678", "+33698765432")
        await gateway.oppose("+33698765432")
        # the one rewrite: the documented gateway address -> this test's gateway
        text = block.text.replace(DOC_AGI, gateway.agi_url)
        (server.host_dir / "etc" / "extensions.conf").write_text(text + TEST_CONTEXTS)
        server.command("dialplan reload")
        yield block, server, gateway


@pytest.mark.timeout(CALL_DEADLINE_S + 120)
async def test_allowed_call_is_held_past_30_s_and_a_blocked_one_never_dials(
    gw: tuple[Block, AsteriskServer, RunningGateway],
) -> None:
    block, server, _gateway = gw
    (context,) = [c for c in CONTEXT.findall(block.text) if c != "general"][:1]
    async with AmiClient(server.ami_host, server.ami_port, server.admin_user,
                         server.admin_secret) as admin:
        allowed = CallResult(tag="docallow", number=ALLOWED)
        blocked = CallResult(tag="docblock", number=BLOCKED)
        started = time.monotonic()
        await originate(admin, ALLOWED, context, tag=allowed.tag, campaign="x",
                        dest_context="doc-hold")
        await originate(admin, BLOCKED, context, tag=blocked.tag, campaign="x",
                        dest_context="doc-hold")
        await wait_calls_done(admin, [allowed, blocked], timeout_s=CALL_DEADLINE_S)
        held_s = time.monotonic() - started
        callee_done = [e for e in admin.events if e.get("Event") == "UserEvent"
                       and e.get("UserEvent") == "DgCalleeDone"]
    log = server.log_tail()
    assert allowed.sink_numbers or any(
        e.get("UserEvent") == "DgSinkReached" for e in admin.events), (
        f"{block.where}: the allowed call never reached the trunk\n{log}")
    # Asterisk's own clock: the callee's Wait() ran to its end before the call ended ...
    assert callee_done, f"{block.where}: the call ended before the callee's {CALLEE_HOLD_S} s"
    # ... and the screened leg ended normally (16), not by a timeout (21 via the T exten)
    assert allowed.screen_hangup_cause == "16", (
        f"{block.where}: allowed call ended with cause {allowed.screen_hangup_cause} "
        f"after {held_s:.1f} s\n{log}")
    assert held_s >= CALLEE_HOLD_S - 1
    assert blocked.screen_hangup_cause == "21", blocked.events
    assert not [e for e in blocked.events if e.get("Event") == "Newexten"
                and e.get("Application") == "Dial"], f"{block.where}: a blocked call dialled"


@pytest.mark.parametrize("block", fragment_blocks(), ids=str)
def test_dialplan_fragment_loads(block: Block, asterisk: AsteriskServer) -> None:
    name = f"doc-fragment-{block.line}"
    body = block.text.replace(DOC_AGI, "agi://127.0.0.1:9")
    if not body.lstrip().startswith("exten"):
        body = "exten => _X.,1,NoOp(fragment)\n" + body
    asterisk.add_context(name, body)
    shown = asterisk.command(f"dialplan show {name}")
    priorities = len([ln for ln in body.splitlines()
                      if ln.strip().startswith(("exten =>", "same =>"))])
    assert f"{priorities} priorit" in shown or shown.count("[pbx_config]") >= priorities, (
        f"{block.where}: {priorities} priorities written, Asterisk shows:\n{shown}")
