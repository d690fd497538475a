"""``dialer-gateway`` console script: ``main(argv) -> exit code`` (docs/cli.md).

Exit codes: 0 ok; 1 the command found a problem (``audit verify``: broken chain);
2 usage, configuration or input error (message on stderr); 3 store or audit
storage unavailable.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from gateway import app
from gateway.audit import AuditConfigError, AuditUnavailable
from gateway.cli.commands import EXIT_OK, EXIT_STORE, EXIT_USAGE, HANDLERS
from gateway.cli.parser import UsageError, build_parser
from gateway.cli.wiring import configure_logs
from gateway.config import Config, ConfigError, load_config
from gateway.core.policy import PolicyError
from gateway.importer import ImportFileError
from gateway.redact import redact_text
from gateway.store.base import StoreUnavailable

__all__ = ["EXIT_OK", "EXIT_STORE", "EXIT_USAGE", "main"]


def _error(message: str) -> None:
    print(f"dialer-gateway: error: {redact_text(message)}", file=sys.stderr)


def _serve(config: Config) -> int:
    asyncio.run(app.run(config))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        _error(str(exc))
        return EXIT_USAGE
    try:
        config = load_config(args.config)
        configure_logs(config, serve=args.handler == "serve")
        if args.handler == "serve":
            return _serve(config)
        code: int = asyncio.run(HANDLERS[args.handler](args, config))
        return code
    except ImportFileError as exc:
        _error(f"nothing imported; {len(exc.errors)} problem(s):")
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, ConfigError, PolicyError, AuditConfigError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except (StoreUnavailable, AuditUnavailable) as exc:
        _error(f"unavailable: {exc}")
        return EXIT_STORE
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
