"""Default limits of the FastAGI wire codec (:mod:`gateway.agi.protocol`).

Apart from the codec so that the configuration (:mod:`gateway.agi.settings`) takes its
defaults without compiling the codec's patterns: a CLI command that serves no AGI,
such as ``check``, starts without it (docs/benchmarks.md, CLI start-up).
"""

from __future__ import annotations

DEFAULT_MAX_LINE_BYTES = 2048  # Asterisk's own AGI buffer (AGI_BUF_LEN) is 2048 bytes
DEFAULT_MAX_HEADERS = 256  # Asterisk sends ~20 variables plus one per AGI() argument
DEFAULT_MAX_USAGE_LINES = 64  # lines of one ``520-`` usage block
# the whole environment: Asterisk's is a few kB (its AGI() arguments are at most 8 kB);
# within max_line_bytes and max_headers alone it could hold 512 KiB per connection
DEFAULT_MAX_ENV_BYTES = 32768
