"""A gateway process whose event loop lags by real CPU work (the overload tier's subject).

``python -m tests.field.lagging_gateway CONFIG CHUNK_S``: builds ``gateway.app.App`` from
the TOML file as ``serve`` does (clock fixed at a legal instant), then keeps its own loop
busy: every turn burns ``CHUNK_S`` of CPU (tests/regressions/cpu_lag.py), as a gateway on
a saturated host does. Prints ``{"agi": port}`` once listening; stops (gracefully) when its
stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from gateway.app import App
from gateway.config import load_config
from gateway.logs import configure_logging
from tests.e2e.gateway_runner import LEGAL_INSTANT
from tests.regressions.cpu_lag import lagging_loop


async def main(config_path: str, chunk_s: float) -> None:
    config = load_config(Path(config_path), env={})
    lg = config.logging
    configure_logging(lg.level, "json", lg.number_redaction, lg.hash_key)
    app = App(config, clock=lambda: LEGAL_INSTANT)
    await app.start()
    try:
        async with lagging_loop(chunk_s):
            print(json.dumps({"agi": app.agi_address[1]}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await app.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
