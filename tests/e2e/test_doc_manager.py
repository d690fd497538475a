"""The documentation's manager.conf blocks (``<!-- doc-test: manager -->``) in a real
Asterisk 22: every account they define logs in with the secret they give, and an account
without write classes cannot originate.

Rewrites: ``port =`` becomes a free port, and the harness's own admin accounts are
appended (the fixture needs one to see Asterisk fully booted).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.docs.blocks import Block, blocks
from tests.e2e import asterisk_conf as conf
from tests.e2e.asterisk_server import AsteriskServer, SyncAmi, chroot_root, free_port

SECTION = re.compile(r"^\[([^\]]+)\]\s*$", re.MULTILINE)


def accounts(text: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if match := SECTION.match(line):
            current = {} if match.group(1) != "general" else None
            if current is not None:
                out[match.group(1)] = current
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return out


@pytest.fixture(params=blocks("manager"), ids=str)
def manager_asterisk(request: pytest.FixtureRequest,
                     asterisk: AsteriskServer) -> Iterator[tuple[Block, AsteriskServer]]:
    block: Block = request.param
    server = AsteriskServer(chroot_root())
    server.ami_port = free_port()
    text, n = re.subn(r"(?m)^port\s*=\s*\d+", f"port = {server.ami_port}", block.text)
    assert n == 1, f"{block.where}: expected one 'port =' line in [general]"
    admin = conf.manager_conf(server.ami_port, server.users)
    admin_accounts = admin[admin.index("\n[", admin.index("[general]") + 1):]
    (server.host_dir / "etc" / "manager.conf").write_text(text + "\n" + admin_accounts)
    try:
        server.start()
        yield block, server
    finally:
        server.cleanup()


def test_manager_block_accounts_log_in(manager_asterisk: tuple[Block, AsteriskServer]) -> None:
    block, server = manager_asterisk
    found = accounts(block.text)
    assert found, f"{block.where}: no account in the block"
    for name, settings in found.items():
        ami = SyncAmi(server.ami_host, server.ami_port)
        try:
            login = ami.action("Login", Username=name, Secret=settings.get("secret", ""))
            assert login.get("Response") == "Success", f"{block.where}: [{name}]: {login}"
            if not settings.get("write"):
                refused = ami.action("Originate", Channel="Local/1@nowhere", Exten="s",
                                     Context="nowhere", Priority="1")
                assert refused.get("Response") == "Error", refused
                assert "ermission" in refused.get("Message", ""), refused
        finally:
            ami.close()
