"""A scripted fake of Asterisk's AMI on a real socket (127.0.0.1, port 0), for unit tests.

It speaks the banner, Challenge/Login (MD5 and plain), Ping, and answers every other
action with ``Response: Success`` unless the action name is in ``hold`` (then it stays
unanswered, to test what happens to actions in flight). It records every action it
received; tests wait on ``wait_for`` (a condition with a deadline), never sleep.
"""

# ruff: noqa: S107 - fixed test credentials for loopback-only fakes

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from gateway.ami.auth import md5_key
from gateway.ami.codec import AmiMessage, AmiParser, AmiProtocolError, encode, encode_banner

WAIT_S = 5.0


class FakeAsterisk:
    def __init__(
        self, username: str = "gw", secret: str = "s3cret", *, fully_booted: bool = False
    ) -> None:
        self.fully_booted = fully_booted  # send "Event: FullyBooted" after a login
        self.username = username
        self.secret = secret
        self.port = 0
        self.received: list[AmiMessage] = []
        self.logins = 0
        self.hold: set[str] = set()
        self._cond = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()  # logged in
        self._all: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection (an Asterisk crash or restart)."""
        if self._server is not None:
            self._server.close()
        for w in list(self._all):
            w.transport.abort()
        if self._tasks:  # handlers end on their own once their transport is gone
            async with asyncio.timeout(WAIT_S):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def emit(self, event: AmiMessage) -> None:
        data = encode(event)
        for w in list(self._writers):
            w.write(data)
            with contextlib.suppress(OSError):
                await w.drain()

    def actions(self, name: str) -> list[AmiMessage]:
        return [m for m in self.received if (m.action or "").lower() == name.lower()]

    async def wait_for(self, predicate: Callable[[], bool], deadline_s: float = WAIT_S) -> None:
        async with asyncio.timeout(deadline_s), self._cond:
            await self._cond.wait_for(predicate)

    async def _record(self, msg: AmiMessage) -> None:
        async with self._cond:
            self.received.append(msg)
            self._cond.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._all.add(writer)
        parser = AmiParser()
        challenge = "0123456789"
        logged_in = False
        try:
            writer.write(encode_banner("5.0.1"))
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for msg in parser.feed(data):
                    await self._record(msg)
                    action = (msg.action or "").lower()
                    aid = msg.action_id
                    base = (("ActionID", aid),) if aid is not None else ()
                    if action == "challenge":
                        reply = AmiMessage((("Response", "Success"), *base,
                                            ("Challenge", challenge)))
                    elif action == "login":
                        ok = msg.get("Username") == self.username and (
                            msg.get("Key") == md5_key(challenge, self.secret)
                            or msg.get("Secret") == self.secret)
                        reply = AmiMessage((("Response", "Success" if ok else "Error"), *base))
                        if ok:
                            logged_in = True
                            async with self._cond:
                                self.logins += 1
                                self._writers.add(writer)
                                self._cond.notify_all()
                    elif not logged_in:
                        reply = AmiMessage((("Response", "Error"), *base,
                                            ("Message", "Authentication Required")))
                    elif (msg.action or "") in self.hold:
                        continue
                    elif action == "ping":
                        reply = AmiMessage((("Response", "Success"), *base, ("Ping", "Pong")))
                    else:
                        reply = AmiMessage((("Response", "Success"), *base,
                                            ("Message", f"{msg.action} accepted")))
                    writer.write(encode(reply))
                    if action == "login" and logged_in and self.fully_booted:
                        writer.write(encode(AmiMessage.of(Event="FullyBooted",
                                                          Status="Fully Booted")))
                await writer.drain()
        except (OSError, AmiProtocolError):
            return
        finally:
            self._writers.discard(writer)
            self._all.discard(writer)
            self._tasks.discard(task)
            writer.close()
