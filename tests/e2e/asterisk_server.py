"""A real Asterisk, run from the Debian sid chroot, owned by the test session.

Start: ``chroot ROOT asterisk -f -C /tmp/dg-e2e-XXXX/etc/asterisk.conf`` in its own
process group (``-f``: no fork, no console). Ready when an AMI login succeeds and
Asterisk sends ``FullyBooted`` (a deadline, never a sleep). Stop: SIGTERM to the
process group, SIGKILL after a deadline, always.

The chroot shares the host's network namespace: AMI on 127.0.0.1:<free port> is
reachable from the tests, and the dialplan reaches the tests' FastAGI servers on
127.0.0.1 too. Paths given to Asterisk are chroot paths; :attr:`host_dir` is the
same directory seen from the host.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tests.e2e import asterisk_conf as conf

DEFAULT_CHROOT = "/var/cache/dialer-gateway/asterisk-sid"
READY_STAMP = ".dialer-gateway-ready"
START_DEADLINE_S = 60.0  # Asterisk start to FullyBooted
STOP_DEADLINE_S = 15.0  # SIGTERM to exit, then SIGKILL
AMI_IO_TIMEOUT_S = 10.0  # each read/write of the fixture's own AMI connection
AMI_MAX_MESSAGE_BYTES = 1 << 20  # the fixture's AMI reader refuses bigger messages
SAMPLE_SUBROUTINE = Path(__file__).resolve().parents[2] / "asterisk" / "dialer-gateway.conf"


class AsteriskError(RuntimeError):
    """The test Asterisk did not start, answer or stop as expected."""


def chroot_root() -> Path:
    return Path(os.environ.get("DIALER_GATEWAY_ASTERISK_CHROOT", DEFAULT_CHROOT))


def chroot_ready(root: Path) -> bool:
    return (root / READY_STAMP).is_file() and (root / "usr/sbin/asterisk").is_file()


def free_port() -> int:
    """A port free on 127.0.0.1 right now (Asterisk must be told a fixed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _module_dir(root: Path) -> str:
    for candidate in ("usr/lib/x86_64-linux-gnu/asterisk/modules",
                      "usr/lib/aarch64-linux-gnu/asterisk/modules",
                      "usr/lib/asterisk/modules"):
        if (root / candidate / "res_agi.so").is_file():
            return "/" + candidate
    raise AsteriskError(f"no asterisk module directory with res_agi.so under {root}")


class SyncAmi:
    """A minimal blocking AMI client for the fixture itself (login, actions)."""

    def __init__(self, host: str, port: int, timeout_s: float = AMI_IO_TIMEOUT_S) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._buf = b""
        banner = self._read_until(b"\r\n")
        if not banner.startswith(b"Asterisk Call Manager/"):
            raise AsteriskError(f"unexpected AMI banner {banner!r}")
        self._n = 0

    def close(self) -> None:
        self._sock.close()

    def _read_until(self, sep: bytes) -> bytes:
        while sep not in self._buf:
            if len(self._buf) > AMI_MAX_MESSAGE_BYTES:
                raise AsteriskError("AMI message too long")
            chunk = self._sock.recv(65536)
            if not chunk:
                raise AsteriskError("AMI connection closed")
            self._buf += chunk
        head, _, self._buf = self._buf.partition(sep)
        return head

    def read_message(self) -> dict[str, str]:
        raw = self._read_until(b"\r\n\r\n").decode("utf-8", "replace")
        msg: dict[str, str] = {}
        for line in raw.split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep:
                # repeated headers (Output:) are joined with newlines
                msg[key] = f"{msg[key]}\n{value}" if key in msg else value
        return msg

    def action(self, name: str, **headers: str) -> dict[str, str]:
        """Send one action and return its response (events in between are dropped)."""
        self._n += 1
        action_id = f"fixture-{self._n}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"CR/LF in AMI header {key}")
            lines.append(f"{key}: {value}")
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while True:
            msg = self.read_message()
            if msg.get("ActionID") == action_id and "Response" in msg:
                return msg

    def wait_event(self, name: str) -> dict[str, str]:
        while True:
            msg = self.read_message()
            if msg.get("Event") == name:
                return msg


class AsteriskServer:
    """One Asterisk process in the chroot; see tests/fixtures/asterisk.py for the API."""

    admin_user = "dg-admin"
    events_user = "dg-events"

    def __init__(self, root: Path, *, extensions: str | None = None,
                 extra_files: Mapping[str, str] | None = None) -> None:
        """``extensions`` replaces the tests' extensions.conf (e.g. a shipped sample);
        ``extra_files`` are written beside it (name -> text)."""
        self.root = root
        self._extensions = conf.BASE_EXTENSIONS if extensions is None else extensions
        self._extra_files = dict(extra_files or {})
        self.ami_host = "127.0.0.1"
        self.ami_port = free_port()
        self.admin_secret = secrets.token_hex(12)
        self.events_secret = secrets.token_hex(12)
        self.host_dir = Path(tempfile.mkdtemp(prefix="dg-e2e-", dir=root / "tmp"))
        self.host_dir.chmod(0o755)
        self.dir = "/" + str(self.host_dir.relative_to(root))  # as Asterisk sees it
        self._extra_contexts: dict[str, str] = {}
        self._globals: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = None
        self._write_config()

    # --- configuration --------------------------------------------------------------

    @property
    def users(self) -> tuple[conf.AmiUser, ...]:
        return (
            conf.AmiUser(self.admin_user, self.admin_secret, read="all", write="all"),
            # read-only: what the gateway's event consumer gets in production
            conf.AmiUser(self.events_user, self.events_secret,
                         read="system,call,agent,user,dialplan,reporting,cdr", write=""),
        )

    def _write_config(self) -> None:
        etc = self.host_dir / "etc"
        for sub in ("etc", "lib/keys", "spool", "run", "log", "cache"):
            (self.host_dir / sub).mkdir(parents=True, exist_ok=True)
        conf.write_text(etc / "asterisk.conf", conf.asterisk_conf(self.dir, _module_dir(self.root)))
        conf.write_text(etc / "modules.conf", conf.modules_conf())
        conf.write_text(etc / "manager.conf", conf.manager_conf(self.ami_port, self.users))
        conf.write_text(etc / "logger.conf", conf.LOGGER_CONF)
        conf.write_text(etc / "cdr.conf", conf.CDR_CONF)
        for name in conf.EMPTY_CONFS:
            conf.write_text(etc / name, "")
        conf.write_text(etc / "extensions.conf", self._extensions)
        shutil.copyfile(SAMPLE_SUBROUTINE, etc / "dialer-gateway.conf")
        for name, text in self._extra_files.items():
            conf.write_text(etc / name, text)
        self._write_extra()

    def _write_extra(self) -> None:
        text = "".join(f"[{name}]\n{body.strip()}\n\n" for name, body in
                       self._extra_contexts.items())
        conf.write_text(self.host_dir / "etc" / "extensions_dg_extra.conf", text)

    # --- process --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            raise AsteriskError("asterisk already running")
        log_path = self.host_dir / "log" / "stdout.log"
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                ["chroot", str(self.root), "/usr/sbin/asterisk", "-f", "-C",
                 f"{self.dir}/etc/asterisk.conf"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killed as a whole
            )
        try:
            self._wait_ready()
            for name, value in self._globals.items():  # Setvar'd globals survive restarts
                self._setvar(name, value)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        last_error: Exception | None = None
        backoff = 0.02
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise AsteriskError(
                    f"asterisk exited with {self._proc.returncode}\n{self.log_tail()}")
            try:
                ami = self.connect_ami()
            except (OSError, AsteriskError) as exc:
                last_error = exc
                # polling a port that is not open yet: the only signal there is
                time.sleep(backoff)
                backoff = min(backoff * 2, 0.25)
                continue
            try:
                ami.wait_event("FullyBooted")
                return
            finally:
                ami.close()
        raise AsteriskError(f"asterisk not ready within {START_DEADLINE_S}s "
                            f"({last_error})\n{self.log_tail()}")

    def connect_ami(self, user: str | None = None) -> SyncAmi:
        """A logged-in blocking AMI session (admin by default)."""
        ami = SyncAmi(self.ami_host, self.ami_port)
        username = user or self.admin_user
        secret = self.admin_secret if username == self.admin_user else self.events_secret
        resp = ami.action("Login", Username=username, Secret=secret, Events="system")
        if resp.get("Response") != "Success":
            ami.close()
            raise AsteriskError(f"AMI login refused: {resp}")
        return ami

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_DEADLINE_S)

    def restart(self) -> None:
        """Stop and start again, same ports, users and dialplan (AMI clients drop)."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.host_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("stdout.log", "messages.log"):
            path = self.host_dir / "log" / name
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                out.append(f"--- {name} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    # --- runtime helpers ------------------------------------------------------------

    def command(self, cli: str) -> str:
        """Run a CLI command through AMI and return its output."""
        ami = self.connect_ami()
        try:
            resp = ami.action("Command", Command=cli)
        finally:
            ami.close()
        if resp.get("Response") != "Success":
            raise AsteriskError(f"{cli!r} failed: {resp}")
        return resp.get("Output", "")

    def set_global(self, name: str, value: str) -> None:
        """Set a dialplan global now (AMI Setvar) and again after every restart."""
        self._globals[name] = value
        if self.running:
            self._setvar(name, value)

    def _setvar(self, name: str, value: str) -> None:
        ami = self.connect_ami()
        try:
            resp = ami.action("Setvar", Variable=name, Value=value)
        finally:
            ami.close()
        if resp.get("Response") != "Success":
            raise AsteriskError(f"Setvar {name} failed: {resp}")

    def add_context(self, name: str, body: str) -> None:
        """Add (or replace) a dialplan context and reload the dialplan."""
        self._extra_contexts[name] = body
        self._write_extra()
        if self.running:
            self.command("dialplan reload")
            shown = self.command(f"dialplan show {name}")
            if f"'{name}'" not in shown:
                raise AsteriskError(f"context {name} not loaded:\n{shown}\n{self.log_tail()}")

    def load_module(self, module: str) -> None:
        out = self.command(f"module load {module}")
        if "Loaded" not in out and "already" not in out:
            raise AsteriskError(f"module load {module}: {out}")
