"""Start an AgiServer on 127.0.0.1:0 with small test deadlines; always closed afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from gateway.agi.handlers import ScreenHandler
from gateway.agi.server import AgiHandler, AgiServer, AgiSettings
from gateway.service_api import Screener
from tests.agi.fakes import FakeScreener, RecordingObserver

TEST_SETTINGS = AgiSettings(
    max_sessions=8,
    env_deadline_s=0.5,
    reply_deadline_s=0.5,
    session_deadline_s=3.0,
    max_line_bytes=256,
    max_headers=40,
    shutdown_grace_s=1.0,
    cancel_deadline_s=1.0,
)


@contextlib.asynccontextmanager
async def running_server(
    screener: Screener | None = None,
    settings: AgiSettings = TEST_SETTINGS,
    handlers: Mapping[str, AgiHandler] | None = None,
    observer: RecordingObserver | None = None,
) -> AsyncIterator[AgiServer]:
    if handlers is None:
        handlers = {"screen": ScreenHandler(screener or FakeScreener())}
    server = AgiServer(handlers, settings, observer=observer)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.close(settings.shutdown_grace_s)
