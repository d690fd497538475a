"""``dialer-gateway`` console script: ``main(argv) -> exit code`` (docs/cli.md).

Exit codes: 0 ok; 1 the command found a problem (``audit verify``: broken chain);
2 usage, configuration or input error (message on stderr); 3 store or audit
storage unavailable; 4 ``serve``: the audit sink cannot be written (the message names
the path); 141 the reader of stdout went away (``... | head``), quietly, as a command
killed by SIGPIPE.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.cli.exits import (
    EXIT_AUDIT_SINK,
    EXIT_BROKEN_PIPE,
    EXIT_OK,
    EXIT_STORE,
    EXIT_USAGE,
)
from gateway.cli.parser import UsageError, build_parser
from gateway.redact import redact_text

if TYPE_CHECKING:
    import argparse

    from gateway.cli.commands import Handler
    from gateway.config import Config

__all__ = ["EXIT_AUDIT_SINK", "EXIT_OK", "EXIT_STORE", "EXIT_USAGE", "main"]


def _error(message: str) -> None:
    print(f"dialer-gateway: error: {redact_text(message)}", file=sys.stderr)


def _silence_stdout() -> None:
    """The reader left: nothing more can be written, and Python's own flush at exit
    must not print a traceback either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _handler(name: str) -> Handler:
    """The command's coroutine. The scrub and report commands' module, and the servers
    (``serve``), are imported only by the commands that use them: ``check`` starts
    without them (docs/benchmarks.md, CLI start-up; tests/test_cli_imports.py)."""
    if name in ("scrub", "report"):
        from gateway.cli import scrub_cmds

        return scrub_cmds.HANDLERS[name]
    from gateway.cli.commands import HANDLERS

    return HANDLERS[name]


def _serve(config: Config) -> int:
    from gateway import app, eventloop
    from gateway.workers import resolve_workers

    if resolve_workers(config) > 1:  # one supervisor, N worker processes
        from gateway import supervisor

        code: int = eventloop.run(supervisor.run(config), config.service.event_loop)
        return code
    eventloop.run(app.run(config), config.service.event_loop)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        _error(str(exc))
        return EXIT_USAGE
    if args.handler == "reload":  # needs only the endpoint: the file may be broken
        from gateway.cli import reload as cli_reload

        return cli_reload.run(args)
    # the process's own command line; not under -X dev, whose exit must still finalize
    # (and warn about) a socket or transport left in a cycle
    if argv is None and args.handler == "check" and not sys.flags.dev_mode:
        return _check_as_the_process(args)
    return _run(args)


def _check_as_the_process(args: argparse.Namespace) -> int:
    """``check`` run as the whole process (the console script, ``python -m gateway``):
    without the cyclic garbage collector, and with every object frozen before the exit.

    Its process ends with some 70,000 objects the collector tracks, nearly all of them
    the modules it imported, and makes little garbage: the collector ran ~100 times
    while it started (~10 ms), and the interpreter's last collection at exit walked
    every object once more (~25 ms; docs/benchmarks.md, CLI start-up). A dry run
    writes nothing but its answer on stdout, flushed before this returns. Only when
    ``main()`` reads the process's own arguments: a caller of ``main(argv)`` in its
    own process (the tests) keeps its collector as it was. Not under ``python -X dev``:
    a frozen object is never finalized, so a socket or transport leaked in a cycle
    would go without its ResourceWarning there."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(args)
    finally:
        gc.freeze()  # the objects made so far: the exit's collection skips them
        if enabled:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    """Load the configuration and run the command; its exceptions become exit codes.

    Imported here, once a command is known: ``--version``, ``--help`` and a usage error
    start without the configuration, the core or asyncio (docs/benchmarks.md, CLI
    start-up; tests/test_cli_imports.py)."""
    import asyncio

    from gateway.audit.errors import AuditConfigError, AuditUnavailable
    from gateway.cli.common import configure_logs
    from gateway.config import ConfigError, load_config
    from gateway.core.policy import PolicyError
    from gateway.health import AuditSinkError
    from gateway.importer import ImportFileError
    from gateway.store.base import StoreUnavailable

    try:
        config = load_config(args.config)
        configure_logs(config, serve=args.handler == "serve")
        if args.handler == "serve":
            return _serve(config)
        code: int = asyncio.run(_handler(args.handler)(args, config))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except ImportFileError as exc:
        _error(f"nothing imported; {len(exc.errors)} problem(s):")
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, ConfigError, PolicyError, AuditConfigError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except AuditSinkError as exc:
        _error(str(exc))
        return EXIT_AUDIT_SINK
    except (StoreUnavailable, AuditUnavailable) as exc:
        _error(f"unavailable: {exc}")
        return EXIT_STORE
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
