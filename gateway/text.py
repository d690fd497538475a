"""Text written out (a page, a CSV cell, the CLI's JSON) that may hold a lone surrogate.

A dial string or AMI header that was not UTF-8 reaches the audit trail as lone
surrogates (the codec keeps such bytes), and a record altered by hand can hold one too.
Such text has no UTF-8 form: written as is it raises ``UnicodeEncodeError`` mid-write.
"""

from __future__ import annotations


def writable(text: str) -> str:
    """``text`` with each lone surrogate as its escape (``\\udc80``, what JSON parses back
    to the same string); any other text unchanged."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
