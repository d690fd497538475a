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
    at = rest.rfind("@")
    if at != -1 and "/" not in rest[:at] and _cut(rest[:at]) < at:
        # "u:p?w@h" (a "?" or "#" in the password) or "h?password=@x" (an "@" in a query
        # value): no parser can tell which; hide everything after the scheme
        return f"{scheme}://{REDACTED}"
    if at != -1 and "/" not in rest[:at]:
        # everything before the last "@" is user-info, even with an unencoded ":" or "@"
        head, tail = _userinfo(rest[:at]) + rest[at:], ""
        cut = _cut(head)
        head, tail = head[:cut], head[cut:]
    else:
        cut = _cut(rest)
        head, tail = rest[:cut], rest[cut:]
        if "@" in head:
            # a "/" in the password: still up to the last "@" before the query
            creds, _, hosts = head.rpartition("@")
            head = _userinfo(creds) + "@" + hosts
    path, qsep, query = tail.partition("?")
    if qsep:
        query, hsep, fragment = query.partition("#")
        parts = []
        for item in query.split("&"):
            name, eq, _value = item.partition("=")
            parts.append(f"{name}={REDACTED}" if eq and is_secret_name(name) else item)
        tail = f"{path}?{'&'.join(parts)}{hsep}{fragment}"
    return f"{scheme}://{head}{tail}"


def _cut(text: str) -> int:
    """Where the query or the fragment starts (len when neither)."""
    cut = len(text)
    for ch in "?#":
        i = text.find(ch)
        if i != -1:
            cut = min(cut, i)
    return cut


def _userinfo(creds: str) -> str:
    """``user:***`` (the user name kept), or ``***`` for ``:pw`` / a lone ``pw``
    (redis-py may send a lone user-info as the password)."""
    user, has_pw, _pw = creds.partition(":")
    if has_pw and user and "/" not in user:
        return f"{user}:{REDACTED}"
    return REDACTED


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def describe_value(value: object) -> str:
    """What an error may say about a secret's value: its type, never the value."""
    return f"a {type(value).__name__} (value not shown)"
