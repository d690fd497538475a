"""What every CLI command shares besides the wiring (:mod:`gateway.wiring` builds the
store, the audit trail, the policy and the service, as for ``serve``): its logs, and
the warning that a change to the memory store does not outlive the command."""

from __future__ import annotations

import sys

from gateway.config import Config, ConfigError
from gateway.logs import configure_logging
from gateway.wiring import is_memory


def configure_logs(config: Config, *, serve: bool) -> None:
    """Structured logs on stderr (stdout carries the commands' data).

    ``serve`` logs at the configured level; the other commands at warning and above.
    """
    level = config.logging.level if serve else "warning"
    try:
        configure_logging(
            level,
            config.logging.format,  # type: ignore[arg-type]  # checked by load_config
            config.logging.number_redaction,  # type: ignore[arg-type]  # idem
            config.logging.hash_key,
        )
    except ValueError as exc:
        raise ConfigError(f"{config.source}: logging: {exc}") from exc


def warn_memory(config: Config, what: str) -> None:
    if is_memory(config):
        print(f"dialer-gateway: warning: the store is {config.store.url} (in this process "
              f"only): {what} will not persist; configure [store] url = \"redis://...\"",
              file=sys.stderr)
