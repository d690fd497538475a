#!/usr/bin/env python3
"""Probe: why dialer-gateway does not use panoramisk's FastAGI server (panoramisk 1.4).

Each probe runs against the panoramisk installed in the venv, on 127.0.0.1 only, and
prints one line ``<probe>: FLAW|OK <detail>``. The probes that can hang run in a child
process killed after a hard timeout, so this script always ends.

    python bench/probes/panoramisk_fast_agi.py          # all probes
    python bench/probes/panoramisk_fast_agi.py eof      # one probe

Probes:
- add_route: ``Application.add_route`` with a plain function calls ``asyncio.coroutine``,
  removed in Python 3.11 -> AttributeError.
- eof: a peer that closes before the blank line makes ``Application.handler`` loop on
  ``reader.read()`` returning b"" forever: 100 % CPU and the *whole event loop* frozen.
- silent: a peer that connects and sends nothing is never closed (no deadline).
- unbounded: a peer that sends megabytes without a blank line is buffered without limit.
- usage: a multi-line ``520-`` usage reply is read as two lines only; the rest of the block
  is taken as the reply to the *next* command (the session is out of step).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time

HARD_TIMEOUT_S = 10.0


def probe_add_route() -> str:
    from panoramisk.fast_agi import Application

    async def main() -> str:
        app = Application()

        def plain(request: object) -> None:
            return None

        try:
            app.add_route("plain", plain)
        except AttributeError as exc:
            return f"FLAW add_route(plain function) raises AttributeError: {exc}"
        return "OK add_route accepted a plain function"

    return asyncio.run(main())


def _serve_panoramisk() -> tuple[asyncio.AbstractEventLoop, int]:
    """Panoramisk's handler on 127.0.0.1:0, in this process's main-thread loop."""
    from panoramisk.fast_agi import Application

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = Application(loop=loop)

    async def route(request: object) -> None:
        return None

    app.add_route("screen", route)
    server = loop.run_until_complete(asyncio.start_server(app.handler, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    return loop, port


def probe_eof_child() -> None:
    """Child: heartbeat on the loop; a thread closes a connection before the blank line."""
    loop, port = _serve_panoramisk()
    beats = [time.monotonic()]

    async def heartbeat() -> None:
        while True:
            beats.append(time.monotonic())
            await asyncio.sleep(0.05)

    def client() -> None:
        import socket

        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"agi_network: yes\nagi_network_script: screen\n")
        # closed without the blank line

    def watchdog() -> None:
        time.sleep(1.5)
        cpu_before = time.process_time()
        time.sleep(1.0)
        stale = time.monotonic() - beats[-1]
        cpu = time.process_time() - cpu_before
        if stale > 0.9:
            print(f"FLAW event loop frozen: no heartbeat for {stale:.1f}s, "
                  f"{cpu:.2f}s CPU burnt in 1.0s", flush=True)
            os._exit(3)
        print(f"OK loop alive (last heartbeat {stale:.2f}s ago)", flush=True)
        os._exit(0)

    threading.Thread(target=client, daemon=True).start()
    threading.Thread(target=watchdog, daemon=True).start()
    loop.create_task(heartbeat())
    loop.run_forever()


def probe_silent_child() -> None:
    loop, port = _serve_panoramisk()

    async def main() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with asyncio.timeout(3.0):
                data = await reader.read(1)
            print(f"OK server closed a silent peer ({data!r})", flush=True)
        except TimeoutError:
            print("FLAW a silent peer is still connected after 3.0s (no deadline)", flush=True)
        writer.close()

    loop.run_until_complete(main())
    os._exit(0)


def probe_unbounded_child() -> None:
    loop, port = _serve_panoramisk()

    async def main() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent = 0
        chunk = b"agi_x: " + b"a" * 65536
        try:
            async with asyncio.timeout(4.0):
                while sent < 4 * 1024 * 1024:
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
        except (TimeoutError, ConnectionError):
            pass
        closed = reader.at_eof()
        if sent >= 4 * 1024 * 1024 and not closed:
            print(f"FLAW {sent // 1024} KiB without a newline accepted and buffered "
                  "(no line or header limit)", flush=True)
        else:
            print(f"OK server stopped the peer after {sent // 1024} KiB", flush=True)
        writer.close()

    loop.run_until_complete(main())
    os._exit(0)


def probe_usage() -> str:
    from panoramisk.fast_agi import Request

    async def main() -> str:
        done = asyncio.Event()

        async def fake_asterisk(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                await r.readline()  # first command
                w.write(b"520-Invalid command syntax.  Proper usage follows:\n"
                        b" Usage: SET VARIABLE <variablename> <value>\n"
                        b" Sets a variable to the current channel.\n"
                        b"520 End of proper usage.\n")
                if await r.readline():  # second command
                    w.write(b"200 result=1\n")
                    await w.drain()
                await r.read()  # until the client closes
            finally:
                w.close()
                done.set()

        server = await asyncio.start_server(fake_asterisk, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = Request(None, {}, reader, writer)
        try:
            async with asyncio.timeout(3.0):
                await request.send_command("SET VARIABLE")
                second = await request.send_command("SET VARIABLE X 1")
        except ValueError as exc:
            second = {"exception": f"ValueError: {exc}"}
        finally:
            writer.close()
            async with asyncio.timeout(3.0):
                await done.wait()
            server.close()
            await server.wait_closed()
        if second.get("status_code") != 200 or second.get("result") != ("1", ""):
            return ("FLAW the rest of a 520 usage block is read as the reply to the next "
                    f"command: {second}")
        return f"OK second reply {second}"

    return asyncio.run(main())


def run_child(name: str) -> str:
    try:
        proc = subprocess.run(
            [sys.executable, __file__, f"--child-{name}"],
            capture_output=True, text=True, timeout=HARD_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired:
        return f"FLAW probe process did not end within {HARD_TIMEOUT_S}s (killed)"
    out = proc.stdout.strip().splitlines()
    return out[-1] if out else f"ERROR exit {proc.returncode}: {proc.stderr.strip()[-300:]}"


PROBES = {
    "add_route": probe_add_route,
    "eof": lambda: run_child("eof"),
    "silent": lambda: run_child("silent"),
    "unbounded": lambda: run_child("unbounded"),
    "usage": probe_usage,
}
CHILDREN = {"eof": probe_eof_child, "silent": probe_silent_child,
            "unbounded": probe_unbounded_child}


def main(argv: list[str]) -> int:
    if argv and argv[0].startswith("--child-"):
        with contextlib.suppress(KeyboardInterrupt):
            CHILDREN[argv[0].removeprefix("--child-")]()
        return 0
    from importlib.metadata import version

    print(f"panoramisk {version('panoramisk')}, Python {sys.version.split()[0]}")
    flaws = 0
    for name in argv or list(PROBES):
        line = PROBES[name]()
        flaws += line.startswith("FLAW")
        print(f"{name}: {line}", flush=True)
    return 0 if flaws == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
