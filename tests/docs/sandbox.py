"""A throw-away installation in which documented commands run verbatim.

Layout under ``root`` (the only rewrite of a command: these three prefixes):

    etc/dialer-gateway/     gateway.toml (deploy/gateway.toml.example, its store pointed
                            at the sandbox redis-server), redis.password, ami.secret
    var/lib/dialer-gateway/ the state directory (audit file)
    opt/dialer-gateway/bin/dialer-gateway, bin/dialer-gateway, work/.venv/bin/dialer-gateway
                            wrappers running this checkout's ``python -m gateway``
    work/                   the working directory, with tests/docs/files/* copied in
                            (and tests/docs/files/NAME/* over them for ``files=NAME``)

With a Redis (``shell redis``), the sandbox starts its own redis-server with
``requirepass`` set to redis.password, and ``DIALER_GATEWAY_CONFIG`` names the sandbox's
gateway.toml, so commands with and without ``--config`` reach the same store.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.docs.blocks import ROOT
from tests.docs.trail import write_trail
from tests.fixtures.redis_servers import RedisProcess

FILES = Path(__file__).resolve().parent / "files"
EXAMPLE = ROOT / "deploy" / "gateway.toml.example"
PREFIXES = ("/etc/dialer-gateway", "/var/lib/dialer-gateway", "/opt/dialer-gateway")
COMMAND_TIMEOUT_S = 60.0
REDIS_PASSWORD = "doc-test-redis-password"  # a test server's password


@dataclass
class Result:
    command: str
    code: int
    output: str  # stdout and stderr, interleaved as a terminal shows them


class Sandbox:
    def __init__(self, root: Path, *, redis: bool = False, files: str = "",
                 trail: str | None = None) -> None:
        self.root = root
        self.work = root / "work"
        self.redis: RedisProcess | None = None
        for sub in ("etc/dialer-gateway", "var/lib/dialer-gateway", "opt/dialer-gateway/bin",
                    "bin", "work/.venv/bin"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for path in [*FILES.glob("*.csv"), *FILES.glob("*.toml")]:
            shutil.copy(path, self.work / path.name)
        if files:  # a variant of some files (``files=NAME``: tests/docs/files/NAME/)
            variant = FILES / files
            if not variant.is_dir():
                raise ValueError(f"files={files}: no directory {variant}")
            for path in variant.iterdir():
                shutil.copy(path, self.work / path.name)
        wrapper = (f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m gateway \"$@\"\n")
        for place in ("opt/dialer-gateway/bin", "bin", "work/.venv/bin"):
            script = root / place / "dialer-gateway"
            script.write_text(wrapper)
            script.chmod(0o755)
        etc = root / "etc/dialer-gateway"
        (etc / "redis.password").write_text(REDIS_PASSWORD + "\n")
        (etc / "ami.secret").write_text("doc-test-ami-secret\n")
        self.env = {
            "PATH": f"{root / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.work),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
            "DIALER_GATEWAY_LOGGING_FORMAT": "console",
        }
        if redis:
            self.redis = RedisProcess(root / "redis")
            self.redis.start()
            with self.redis.admin() as admin:  # after the fixture's password-less start check
                admin.config_set("requirepass", REDIS_PASSWORD)
            self.env["DIALER_GATEWAY_CONFIG"] = str(etc / "gateway.toml")
        self.write_config(EXAMPLE.read_text(encoding="utf-8"))
        if trail is not None:  # ``trail`` or ``trail=rotated`` (tests/docs/trail.py)
            write_trail(etc / "gateway.toml", self.work, rotated=trail == "rotated")

    def write_config(self, text: str) -> None:
        port = self.redis.port if self.redis is not None else 6379
        text = self.relocate(text).replace("127.0.0.1:6379/0", f"127.0.0.1:{port}/0")
        (self.root / "etc/dialer-gateway/gateway.toml").write_text(text)

    def relocate(self, text: str) -> str:
        for prefix in PREFIXES:
            text = text.replace(prefix, str(self.root) + prefix)
        return text

    def run(self, command: str, *, extra_env: dict[str, str] | None = None) -> Result:
        done = subprocess.run(
            ["bash", "-c", self.relocate(command)], cwd=self.work,
            env={**self.env, **(extra_env or {})}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
        return Result(command, done.returncode, done.stdout)

    def close(self) -> None:
        if self.redis is not None:
            self.redis.stop()
