"""Checks of a whole configuration, after each value had its type checked: listen
addresses, bounds, settings that depend on others, and the AMI proxy accounts'
campaigns (resolved here: :func:`resolve_proxy_campaigns`)."""

from __future__ import annotations

import dataclasses

from gateway import eventloop
from gateway.config_schema import Config, ConfigError, parse_hostport
from gateway.store.prescreen import MAX_PRESCREEN_TTL_S

__all__ = ["MAX_WORKERS", "MAX_WORKER_HANG_S", "MIN_WORKER_HANG_S", "resolve_proxy_campaigns",
           "validate"]

MAX_WORKERS = 64  # [service] workers: upper bound (a typo must not fork 10,000 processes)
# [service] worker_hang_s: above the supervisor's own waits on a worker (READY_ASK_TIMEOUT_S
# 2 s), so that a loaded worker answering late is never taken for a hung one
MIN_WORKER_HANG_S = 5.0
MAX_WORKER_HANG_S = 3600.0


def validate(cfg: Config) -> None:
    src = cfg.source
    for key, value in (
        ("agi.listen", cfg.agi.listen),
        ("http.listen", cfg.http.listen),
        ("ami_proxy.listen", cfg.ami_proxy.listen),
        ("api.listen", cfg.api.listen),
    ):
        parse_hostport(value, key=f"{src}: {key}")
    if cfg.service.decision_budget_ms <= 0:
        raise ConfigError(f"{src}: service.decision_budget_ms: must be > 0")
    if cfg.store.max_connections < 0:
        raise ConfigError(f"{src}: store.max_connections: must be >= 0 (0: automatic)")
    if cfg.store.pool_timeout_s <= 0:
        raise ConfigError(f"{src}: store.pool_timeout_s: must be > 0")
    if not 0 <= cfg.service.workers <= MAX_WORKERS:
        raise ConfigError(f"{src}: service.workers: must be 0 (one per core) to {MAX_WORKERS}")
    if cfg.service.workers > 1 and cfg.store.url.startswith("memory:"):
        raise ConfigError(
            f"{src}: service.workers = {cfg.service.workers}: the memory store lives in one "
            "process, so it needs workers = 1; use a Redis store for more workers")
    hang = cfg.service.worker_hang_s
    if not (hang == 0 or MIN_WORKER_HANG_S <= hang <= MAX_WORKER_HANG_S):
        raise ConfigError(f"{src}: service.worker_hang_s: must be 0 (never) or "
                          f"{MIN_WORKER_HANG_S:g} to {MAX_WORKER_HANG_S:g} seconds")
    if cfg.service.event_loop == "uvloop" and not eventloop.installed():
        raise ConfigError(f"{src}: service.event_loop = \"uvloop\": uvloop is not installed "
                          "(pip install dialer-gateway[uvloop]), or use \"auto\"")
    if not 1 <= cfg.ami_proxy.settings.prescreen_ttl_s <= MAX_PRESCREEN_TTL_S:
        raise ConfigError(f"{src}: ami_proxy.prescreen_ttl_s: expected 1 to "
                          f"{MAX_PRESCREEN_TTL_S} seconds")
    if cfg.logging.number_redaction not in ("full", "last2", "hash"):
        raise ConfigError(f"{src}: logging.number_redaction: expected full, last2 or hash")
    if cfg.logging.number_redaction == "hash" and not cfg.logging.hash_key:
        raise ConfigError(f"{src}: logging.hash_key: required when number_redaction = 'hash'")
    if cfg.logging.format not in ("json", "console", "auto"):
        raise ConfigError(f"{src}: logging.format: expected json, console or auto")
    if cfg.ami_proxy.enabled:
        if not cfg.ami_proxy.accounts:
            raise ConfigError(f"{src}: ami_proxy: enabled but no [ami_proxy.accounts.NAME]")
        for acc in cfg.ami_proxy.accounts:
            if not acc.secret:
                raise ConfigError(f"{src}: ami_proxy.accounts.{acc.name}.secret: missing")
            if acc.default_campaign and acc.default_campaign not in cfg.campaigns:
                raise ConfigError(
                    f"{src}: ami_proxy.accounts.{acc.name}.default_campaign: "
                    f"unknown campaign {acc.default_campaign!r}"
                )


def resolve_proxy_campaigns(cfg: Config) -> Config:
    """Each proxy account's usable campaigns, with the shadow/exempt grants applied.

    A campaign named in ``campaigns`` must exist, and a shadow (``shadow = true``) or
    consent-exempt (``press = true``) one needs the account's explicit grant, else the
    configuration is refused. Without ``campaigns`` the account may use its
    ``default_campaign`` only, and not even that one if it is shadow/exempt without
    the grant (the proxy logs what it refuses when it starts).
    """
    src = cfg.source
    accounts = []
    for acc in cfg.ami_proxy.accounts:
        where = f"{src}: ami_proxy.accounts.{acc.name}"
        explicit = bool(acc.campaigns)
        named = acc.campaigns or ((acc.default_campaign,) if acc.default_campaign else ())
        if explicit and acc.default_campaign and acc.default_campaign not in acc.campaigns:
            raise ConfigError(f"{where}.default_campaign: must be one of campaigns")
        usable = set()
        for cid in named:
            camp = cfg.campaigns.get(cid)
            if camp is None:
                raise ConfigError(f"{where}.campaigns: unknown campaign {cid!r}")
            missing = [
                grant for flag, grant in (
                    (camp.shadow, "allow_shadow_campaigns"),
                    (camp.press, "allow_exempt_campaigns"),
                ) if flag and not getattr(acc, grant)
            ]
            if missing and explicit:
                raise ConfigError(
                    f"{where}.campaigns: {cid!r} needs {' and '.join(missing)} = true"
                )
            if not missing:
                usable.add(cid)
        accounts.append(dataclasses.replace(acc, usable_campaigns=frozenset(usable)))
    settings = dataclasses.replace(cfg.ami_proxy.settings, accounts=tuple(accounts))
    return dataclasses.replace(
        cfg, ami_proxy=dataclasses.replace(cfg.ami_proxy, settings=settings)
    )
