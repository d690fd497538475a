"""`dialer-gateway check … | head` ended in a BrokenPipeError traceback (exit 1).

The reader of stdout may leave at any time; the command then stops quietly with the
status of a command killed by SIGPIPE (141), as coreutils do, with nothing on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = [sys.executable, "-m", "gateway", "check", "06 12 34 56 78", "--campaign", "demo",
         "--at", "2026-12-01T10:30:00+01:00"]
ENV = {**os.environ, "DIALER_GATEWAY_LOGGING_FORMAT": "json"}


def test_reader_gone_before_the_first_write_exits_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # a real pipe whose reader has already left: every write is EPIPE
    try:
        done = subprocess.run(CHECK, stdout=write_end, stderr=subprocess.PIPE, env=ENV,
                              timeout=60, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == b"", done.stderr


def test_piped_into_head_gives_the_first_lines_and_no_traceback() -> None:
    quoted = " ".join(f"'{a}'" for a in CHECK)
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {quoted} | head -n 2"],
                          capture_output=True, text=True, env=ENV, timeout=60, check=False)
    assert done.stdout.splitlines() == ["{", '  "verdict": "ALLOW",'], done.stdout
    assert done.returncode in (0, 141), done.stderr  # 141 when head left before the last write
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
