"""The runbook's install sequence (docs/operations.md#install), command by command, as far
as it runs without systemd, then the unit's ExecStart — with the CLI steps run as the
service user (its secrets must be readable by it: they were not, and the CLI failed with
AuthenticationError, exit 3).

Identities, with real kernel permission checks and no user created on the host: "root"
(the owner of /etc/dialer-gateway) is played by uid ``ADMIN_UID``; the service user
``dialer-gateway`` by a process with no capability at all whose only group is
``SERVICE_GID`` (setpriv). The commands are the runbook's lines with these rewrites only:
paths under /etc, /var/lib and /opt relocated into a sandbox, ``-o root`` / ``-g
dialer-gateway`` given as numbers, ``sudo -u dialer-gateway`` as setpriv. ``$EDITOR`` is
a script that writes what an operator would (the Redis password, the AMI secret, the
example configuration pointed at the test's redis-server).

Every line of the block is either run or skipped here with a reason: a new line in the
runbook fails this test until it is classified.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agi_client import http_get
from tests.docs.blocks import ROOT, blocks_of, commands
from tests.fixtures.redis_servers import RedisProcess

ADMIN_UID = 64_101
SERVICE_GID = 64_102
PASSWORD = "runbook-redis-password"
AS_SERVICE = (f"setpriv --regid={SERVICE_GID} --clear-groups --inh-caps=-all "
              f"--bounding-set=-all")
SKIPPED = {  # line prefix -> why it is not run here
    "python3 -m venv /opt/dialer-gateway": "the virtualenv: tests/field/test_packaging.py",
    "/opt/dialer-gateway/bin/pip install": "installing the wheel: tests/field/test_packaging.py",
    "install -m 0644 deploy/systemd/dialer-gateway.sysusers": "systemd (sysusers.d)",
    "systemd-sysusers": "systemd: the user is played by setpriv (see the docstring)",
    "install -m 0644 deploy/systemd/dialer-gateway.service": "systemd; ExecStart is run below",
    "install -m 0644 deploy/logrotate/dialer-gateway": "logrotate (tests/deploy checks it)",
    "systemctl": "systemd; ExecStart is run below",
    "curl -s http://127.0.0.1:9464/readyz": "run below against the ExecStart process",
}
COMMAND_TIMEOUT_S = 60.0


class Runbook:
    def __init__(self, root: Path, redis_port: int) -> None:
        self.root = root
        self.work = root / "work"
        for sub in ("work", "opt/dialer-gateway/bin", "var/lib/dialer-gateway", "editor"):
            (root / sub).mkdir(parents=True)
        (self.work / "deploy").symlink_to(ROOT / "deploy")
        shutil.copy(ROOT / "tests" / "docs" / "files" / "internal.csv", self.work)
        exe = root / "opt/dialer-gateway/bin/dialer-gateway"
        exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m gateway \"$@\"\n")
        exe.chmod(0o755)
        example = (ROOT / "deploy" / "gateway.toml.example").read_text(encoding="utf-8")
        contents = {
            "redis.password": PASSWORD + "\n",
            "ami.secret": "runbook-ami-secret\n",
            "gateway.toml": self.relocate(example).replace(
                "127.0.0.1:6379/0", f"127.0.0.1:{redis_port}/0"),
        }
        for name, text in contents.items():
            (root / "editor" / name).write_text(text)
        editor = root / "editor.sh"
        editor.write_text(f'#!/bin/sh\nfor f in "$@"; do cat "{root}/editor/$(basename "$f")"'
                          f' > "$f"; done\n')
        editor.chmod(0o755)
        # the state directory systemd creates (StateDirectory=, owned by the service user)
        os.chmod(root / "var/lib/dialer-gateway", 0o750)  # noqa: S103  (StateDirectoryMode)
        os.chown(root / "var/lib/dialer-gateway", 0, SERVICE_GID)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.work),
                    "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT), "EDITOR": str(editor),
                    "DIALER_GATEWAY_LOGGING_FORMAT": "json"}

    def relocate(self, text: str) -> str:
        for prefix in ("/etc/dialer-gateway", "/var/lib/dialer-gateway", "/opt/dialer-gateway"):
            text = text.replace(prefix, str(self.root) + prefix)
        return text

    def rewrite(self, command: str) -> str:
        command = self.relocate(command)
        command = command.replace("-o root", f"-o {ADMIN_UID}")
        command = command.replace("-g root", f"-g {ADMIN_UID}")
        command = command.replace("-g dialer-gateway", f"-g {SERVICE_GID}")
        return command.replace("sudo -u dialer-gateway", AS_SERVICE)

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", self.rewrite(command)], cwd=self.work,
                              env=self.env, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S, check=False)


@pytest.fixture
def runbook() -> Iterator[Runbook]:
    root = Path(tempfile.mkdtemp(prefix="dg-runbook-"))
    root.chmod(0o755)  # the capability-less service user must traverse it
    redis = RedisProcess(root / "redis")
    redis.start()
    try:
        with redis.admin() as admin:
            admin.config_set("requirepass", PASSWORD)
        yield Runbook(root, redis.port)
    finally:
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


def install_block() -> list[str]:
    ops = ROOT / "docs" / "operations.md"
    text = ops.read_text(encoding="utf-8")
    line = text[: text.index("## Install")].count("\n") + 1
    block = next(b for b in blocks_of(ops) if b.line > line and b.info == "sh")
    return [c.text for c in commands(block)]


def test_install_sequence_runs_and_the_cli_works_as_the_service_user(runbook: Runbook) -> None:
    ran: list[str] = []
    for command in install_block():
        if any(command.startswith(prefix) for prefix in SKIPPED):
            continue
        done = runbook.run(command)
        assert done.returncode == 0, (
            f"runbook step `{command}` exited {done.returncode}:\n{done.stdout}{done.stderr}")
        ran.append(command)
    assert any("config check" in c for c in ran) and any("lists status" in c for c in ran)
    assert any(c.startswith("sudo -u dialer-gateway") for c in ran)
    etc = runbook.root / "etc/dialer-gateway"
    for name in ("gateway.toml", "redis.password", "ami.secret"):
        st = (etc / name).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (ADMIN_UID, SERVICE_GID, 0o640)
    listed = runbook.run("sudo -u dialer-gateway /opt/dialer-gateway/bin/dialer-gateway "
                         "--config /etc/dialer-gateway/gateway.toml lists status --json")
    assert [x["name"] for x in json.loads(listed.stdout)["lists"]] == ["opposition:internal"]


def test_a_secret_only_root_can_read_stops_the_service_users_cli(runbook: Runbook) -> None:
    for command in install_block():
        if not any(command.startswith(p) for p in SKIPPED) and "dialer-gateway --config" \
                not in command and "\\" not in command:
            assert runbook.run(command).returncode == 0, command
    password = runbook.root / "etc/dialer-gateway/redis.password"
    os.chown(password, ADMIN_UID, ADMIN_UID)  # the old layout: root:root 0600
    os.chmod(password, 0o600)
    done = runbook.run("sudo -u dialer-gateway /opt/dialer-gateway/bin/dialer-gateway "
                       "--config /etc/dialer-gateway/gateway.toml lists status")
    assert done.returncode == 2, done.stderr  # named, not a traceback or a store outage
    assert "store.password_file: cannot read" in done.stderr and "Permission denied" in done.stderr
    # and without the password at all (it was only in the unit's environment): exit 3
    config = runbook.root / "etc/dialer-gateway/gateway.toml"
    config.write_text(config.read_text().replace("password_file = ", "# password_file = "))
    done = runbook.run("sudo -u dialer-gateway /opt/dialer-gateway/bin/dialer-gateway "
                       "--config /etc/dialer-gateway/gateway.toml lists status")
    assert done.returncode == 3 and "uthentication" in done.stderr, done.stderr


async def test_the_units_execstart_serves_as_the_service_user(runbook: Runbook) -> None:
    for command in install_block():
        if not any(command.startswith(prefix) for prefix in SKIPPED):
            assert (await asyncio.to_thread(runbook.run, command)).returncode == 0, command
    unit = (ROOT / "deploy/systemd/dialer-gateway.service").read_text(encoding="utf-8")
    settings = dict(line.split("=", 1) for line in unit.splitlines()
                    if line[:1].isalpha() and "=" in line)
    cwd = Path(runbook.relocate(settings["WorkingDirectory"]))
    exec_start = runbook.relocate(settings["ExecStart"])
    env = {**runbook.env, "DIALER_GATEWAY_AGI_LISTEN": "127.0.0.1:0",
           "DIALER_GATEWAY_HTTP_LISTEN": "127.0.0.1:0", "DIALER_GATEWAY_AMI_ENABLED": "false"}
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", f"exec {AS_SERVICE} {exec_start}", cwd=cwd, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            while line := await proc.stderr.readline():
                event = json.loads(line) if line.startswith(b"{") else {}
                if event.get("event") == "supervisor.ready" or (  # [service] workers > 1
                        event.get("event") == "gateway.started" and event.get("http")):
                    break
            else:
                raise AssertionError("ExecStart ended before gateway.started")
        host, _, port = str(event["http"]).rpartition(":")
        status, body = await http_get((host, int(port)), "/readyz")
        assert status == 200, body
        audit = runbook.root / "var/lib/dialer-gateway/audit.jsonl"
        assert event["audit"] in (str(audit), [  # one process, or one file per worker
            str(audit.with_name(f"audit-w{i}.jsonl")) for i in range(len(event["audit"]))])
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            await proc.wait()
    assert proc.returncode == 0
