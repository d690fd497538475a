"""The canonical serialisation of audit records: JSON, keys sorted, no whitespace,
ASCII only (non-ASCII escaped as ``\\uXXXX``), no floats (``gateway.audit.chain``
hashes it).

Apart from the chain and its verifier so that building a record (``gateway.audit.record``,
which a dry-run ``check`` does) loads neither.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from typing import Any

# json.dumps with these options builds an encoder per call: built once (it keeps no state)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                              allow_nan=False)


def canonical(obj: Mapping[str, Any]) -> str:
    """Sorted-key compact ASCII JSON; refuses floats' NaN/Infinity."""
    if isinstance(obj, PresealedBody):
        return "{" + ",".join([part for part in obj.canonical_parts() if part]) + "}"
    return _CANONICAL.encode(obj)


def canonical_value(value: Any) -> str:
    """``canonical`` of one JSON value (string, number, list, object...): the bytes it
    takes inside a canonical record. Strings, integers, booleans and null are written
    here (the encoder's own output for them, without building an encoder call)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    try:  # the usual lists of strings and objects of strings, without an encoder call
        if kind is tuple or kind is list:
            return "[" + ",".join(map(encode_basestring_ascii, value)) + "]"
        if kind is dict:
            return "{" + ",".join([encode_basestring_ascii(k) + ":" + encode_basestring_ascii(v)
                                   for k, v in sorted(value.items())]) + "}"
    except TypeError:  # a member that is not a string (or keys that do not sort)
        pass
    return _CANONICAL.encode(value)


class PresealedBody(Mapping[str, Any]):
    """A body that writes its own canonical serialisation (a record's, straight from
    the record: see ``gateway.audit.record.RecordBody``), so that :func:`seal` need not
    split and serialise a dict. Still a read-only mapping of the same body."""

    __slots__ = ()

    def canonical_parts(self) -> tuple[str, str, str, str]:
        """The sorted ``"key":value`` members (comma-joined, no braces) of the body's
        keys before ``hash``, between ``hash`` and ``prev``, between ``prev`` and
        ``seq``, and after ``seq`` (each "" when there is none); the body holds none
        of ``hash``, ``prev`` and ``seq``."""
        raise NotImplementedError
