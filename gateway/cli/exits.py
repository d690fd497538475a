"""The exit codes of ``dialer-gateway`` (docs/cli.md), apart from the commands so that
``--version``, ``--help`` and a usage error start without them."""

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a problem (audit verify: broken chain)
EXIT_USAGE = 2  # usage, configuration or input error
EXIT_STORE = 3  # store (or audit storage) unavailable
EXIT_AUDIT_SINK = 4  # serve: the audit sink cannot be written at start-up
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command killed by SIGPIPE
