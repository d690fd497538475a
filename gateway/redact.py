"""Secret redaction shared by the configuration, the logs and the error messages.

A credential can hide in a URL in two places: the user-info (``redis://user:pw@host``)
and the query (``?password=pw``, ``sentinel_password=pw``, ``token=...``, any
parameter whose name looks like a secret). :func:`redact_url` keeps the shape of the
URL (scheme, user name, hosts, path, harmless parameters) and replaces each secret with
``***``; :func:`redact_text` does the same for every URL inside free text (an error
message, an exception). :func:`is_secret_name` is the one rule for "this key holds a
secret" (configuration keys, log keys, query parameters).
"""

from __future__ import annotations

import re

SECRET_NAME_PATTERN = re.compile(
    r"secret|passw|token|credential|authoriz|cookie|api_?key|(^|_)key$|^auth$", re.I)
REDACTED = "***"
# names the pattern would take for secrets but that only name things
NOT_SECRET_NAMES = frozenset({"stream_key", "heads_key", "key_id", "sort_key"})
# a URL inside free text: scheme://, then anything up to white space (a password may
# hold quotes or brackets; a closing quote after the URL is kept by redact_url's tail)
_URL_IN_TEXT = re.compile(r"[a-z][a-z0-9+.\-]*://\S*", re.I)


def is_secret_name(name: str) -> bool:
    """Whether a key / parameter named ``name`` holds a secret."""
    lowered = name.lower().removeprefix("agi_")
    return lowered not in NOT_SECRET_NAMES and bool(SECRET_NAME_PATTERN.search(lowered))


def redact_url(url: str) -> str:
    """``url`` with the password of its user-info and every secret query parameter
    replaced by ``***`` (user name, hosts, path and other parameters kept)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = len(rest)
    for ch in "?#":
        i = rest.find(ch)
        if i != -1:
            cut = min(cut, i)
    head, tail = rest[:cut], rest[cut:]
    if "@" in head:
        # everything up to the last "@" is user-info (an unencoded "/" or "@" in a
        # password included); only the user name before its ":" is kept
        creds, _, hosts = head.rpartition("@")
        user, has_pw, _pw = creds.partition(":")
        if has_pw and user and "/" not in user:
            head = f"{user}:{REDACTED}@{hosts}"
        else:  # ":pw@", or a lone "pw@" (redis-py may send it as the password)
            head = f"{REDACTED}@{hosts}"
    path, qsep, query = tail.partition("?")
    if qsep:
        query, hsep, fragment = query.partition("#")
        parts = []
        for item in query.split("&"):
            name, eq, _value = item.partition("=")
            parts.append(f"{name}={REDACTED}" if eq and is_secret_name(name) else item)
        tail = f"{path}?{'&'.join(parts)}{hsep}{fragment}"
    return f"{scheme}://{head}{tail}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def describe_value(value: object) -> str:
    """What an error may say about a secret's value: its type, never the value."""
    return f"a {type(value).__name__} (value not shown)"
