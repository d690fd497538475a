"""[store] password_file: the Redis password read from its own file into store.url."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Config, ConfigError, load_config

SECRET = "s3cr@t/pw:x\n"


def cfg(tmp_path: Path, url: str, secret: str | None = SECRET) -> Config:
    path = tmp_path / "redis.password"
    if secret is not None:
        path.write_text(secret)
    return load_config(None, env={}, overrides={"store": {"url": url, "password_file": str(path)}})


def test_password_is_percent_encoded_into_the_url_and_redacted(tmp_path: Path) -> None:
    config = cfg(tmp_path, "redis://10.0.0.10:6379/0")
    assert config.store.url == "redis://:s3cr%40t%2Fpw%3Ax@10.0.0.10:6379/0"
    public = config.to_public_dict()["store"]
    assert public["url"] == "redis://***@10.0.0.10:6379/0"
    assert public["password_file"] == str(tmp_path / "redis.password")  # a path, shown
    assert "s3cr" not in repr(config)


def test_an_acl_user_is_kept_and_sentinel_urls_work(tmp_path: Path) -> None:
    assert cfg(tmp_path, "redis://gw@h:6379/0").store.url == "redis://gw:s3cr%40t%2Fpw%3Ax@h:6379/0"
    sentinel = cfg(tmp_path, "redis+sentinel://a:26379,b:26379/dialer/0").store.url
    assert sentinel == "redis+sentinel://:s3cr%40t%2Fpw%3Ax@a:26379,b:26379/dialer/0"


def test_the_audit_stream_follows_the_store_with_the_password(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("pw\n")
    config = load_config(None, env={}, overrides={
        "store": {"url": "redis://h:6379/0", "password_file": str(path)},
        "audit": {"sink": "redis"}})
    assert config.audit.redis_url == "redis://:pw@h:6379/0"


@pytest.mark.parametrize(("url", "secret", "message"), [
    ("redis://h:6379/0", None, "store.password_file: cannot read"),
    ("redis://h:6379/0", "\n\n", "is empty"),
    ("redis://:other@h:6379/0", "pw", "already carries a password"),
    ("memory://", "pw", "the memory store has no password"),
])
def test_unusable_password_files_are_configuration_errors(
    tmp_path: Path, url: str, secret: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        cfg(tmp_path, url, secret)
    assert "pw" not in str(caught.value).replace("password", "")  # never echoes the secret
