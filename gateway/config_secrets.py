"""Secrets kept in files of their own, beside the TOML file (docs/operations.md#secrets).

``[store] password_file`` names a file holding only the Redis password (one line). It is
read by every process that loads the configuration — ``serve`` and the CLI alike — so a
file owned ``root:dialer-gateway`` mode 0640 lets the service user run the runbook's CLI
steps with the same credentials as the service (``[ami] secret_file`` works the same way
for the AMI secret). The password is put into ``store.url`` (percent-encoded), which is
redacted in every ``repr``, log line and ``config check``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

MAX_SECRET_FILE_BYTES = 4096  # a password file is one short line


class SecretFileError(ValueError):
    """A secret file cannot be used; the message names the key and the file."""


def read_secret_file(path: str, *, key: str) -> str:
    """The stripped first line of ``path`` (never echoed in an error)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretFileError(f"{key}: cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(f"{key}: {path} is longer than {MAX_SECRET_FILE_BYTES} bytes")
    lines = raw.decode("utf-8", errors="strict").strip().splitlines()
    if not lines or not lines[0].strip():
        raise SecretFileError(f"{key}: {path} is empty")
    return lines[0].strip()


def url_with_password(url: str, password: str, *, key: str) -> str:
    """``redis://host/0`` + ``pw`` -> ``redis://:pw@host/0`` (``user@`` kept)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        # not echoed: without "://" the whole value may be a password
        raise SecretFileError(f"{key}: store.url has no scheme (redis://...)")
    if scheme.startswith("memory"):
        raise SecretFileError(f"{key}: the memory store has no password")
    creds, at, hosts = rest.rpartition("@")
    if at and ":" in creds:
        raise SecretFileError(f"{key}: store.url already carries a password; keep only one")
    user = creds if at else ""
    return f"{scheme}://{user}:{quote(password, safe='')}@{hosts}"


def apply_store_password_file(data: dict[str, Any], src: str) -> None:
    """Fold ``[store] password_file`` into ``[store] url`` in the raw TOML data."""
    store = data.get("store")
    if not isinstance(store, dict) or not store.get("password_file"):
        return
    key = f"{src}: store.password_file"
    path = store["password_file"]
    if not isinstance(path, str):
        raise SecretFileError(f"{key}: expected a string, got {path!r}")
    url = store.get("url", "memory://")
    if not isinstance(url, str):
        return  # the type error is reported by the store section itself
    store["url"] = url_with_password(url, read_secret_file(path, key=key), key=key)
