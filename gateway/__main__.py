"""``python -m gateway``: the ``dialer-gateway`` command (``make run`` starts it this way)."""

import sys

from gateway.cli import main

sys.exit(main())
