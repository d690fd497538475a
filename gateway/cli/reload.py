"""``dialer-gateway reload``: ask the running gateway to reload, and say how it went.

It POSTs to the gateway's ops endpoint (``http.listen``, loopback only) at
``/-/reload`` and waits for the outcome, unlike a bare SIGHUP. The address comes from
``--endpoint``, else ``DIALER_GATEWAY_HTTP_LISTEN``, else ``[http] listen`` of the
configuration file, read on its own: a file broken elsewhere is exactly what the
gateway must report, so only that one key has to be readable here.

Exit codes: 0 reloaded (settings that need a restart are listed on stderr); 1 the
gateway refused the new configuration and keeps running the old one; 2 usage, or the
file cannot be read to find the endpoint; 3 the gateway did not answer.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tomllib
from collections.abc import Mapping
from typing import Any

from gateway.config import ENV_PREFIX, ConfigError, HttpConfig, parse_hostport

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
DEFAULT_TIMEOUT_S = 30.0  # connect + the reload itself (file reads, validation)
_ANY = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 - mapped to loopback


def endpoint(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, int]:
    """Where the running gateway's ops endpoint listens (raises ConfigError)."""
    listen: str = args.endpoint or env.get(ENV_PREFIX + "HTTP_LISTEN") or ""
    path = args.config or env.get(ENV_PREFIX + "CONFIG")
    if not listen and path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{path}: invalid TOML: {exc}; the running gateway keeps its configuration "
                "(fix the file, or give --endpoint to have the gateway report it)"
            ) from exc
        section = data.get("http", {})
        value = section.get("listen") if isinstance(section, dict) else None
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: http.listen: expected a string, got {value!r}")
        listen = value or ""
    host, port = parse_hostport(listen or HttpConfig().listen, key="http.listen")
    return _ANY.get(host, host), port


def _post(host: str, port: int, timeout_s: float) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("POST", "/-/reload", headers={"Content-Length": "0"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {"error": body.decode(errors="replace")[:200]}
    return response.status, doc if isinstance(doc, dict) else {"error": str(doc)}


def run(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        host, port = endpoint(args, env)
    except ConfigError as exc:
        print(f"dialer-gateway: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        status, doc = _post(host, port, args.timeout)
    except (OSError, http.client.HTTPException) as exc:
        print(f"dialer-gateway: error: the gateway at {host}:{port} did not answer: {exc}",
              file=sys.stderr)
        return EXIT_UNAVAILABLE
    if args.json:
        print(json.dumps(doc, sort_keys=True, indent=2))
    if status == 200 and doc.get("result") == "success":
        if not args.json:
            changed = ", ".join(doc.get("changed") or []) or "nothing"
            print(f"reloaded: config {doc.get('config_hash')}; changed: {changed}")
            closed = doc.get("closed_dialer_sessions") or []
            if closed:
                print(f"closed dialer sessions of revoked accounts: {', '.join(closed)}")
        restart = doc.get("restart_needed") or []
        if restart:
            print("dialer-gateway: warning: restart needed, not applied: "
                  + ", ".join(restart), file=sys.stderr)
        return EXIT_OK
    if status == 422:
        print(f"dialer-gateway: error: reload refused, the running configuration "
              f"(config {doc.get('config_hash')}) stays in force: {doc.get('error')}",
              file=sys.stderr)
        return EXIT_REFUSED
    print(f"dialer-gateway: error: reload failed: HTTP {status}: {doc.get('error')}",
          file=sys.stderr)
    return EXIT_UNAVAILABLE
