"""The pure part of a reload: what needs a restart, what is applied, the hash in force."""

from __future__ import annotations

from dataclasses import replace

from gateway.config import Config, load_config
from gateway.reload import changed_settings, config_digest, effective_config, restart_needed
from gateway.wiring import build_policy


def cfg(**sections: dict[str, object]) -> Config:
    return load_config(None, env={}, overrides=sections)


PROXY = {"enabled": True, "listen": "127.0.0.1:5039",
         "accounts": {"vici": {"secret": "s1", "default_campaign": "demo"}}}


def test_nothing_changed_nothing_to_do() -> None:
    a, b = cfg(), cfg()
    assert restart_needed(a, b) == ()
    assert changed_settings(a, effective_config(a, b), build_policy(a), build_policy(b)) == ()
    assert config_digest(a, build_policy(a)) == config_digest(b, build_policy(b))


def test_restart_only_settings_are_named_and_kept() -> None:
    running = cfg(ami_proxy=PROXY)
    loaded = cfg(
        store={"url": "redis://:hunter2@10.0.0.1:6379/0"}, agi={"listen": "127.0.0.1:1",
                                                                 "max_sessions": 9},
        http={"listen": "127.0.0.1:2"}, ami={"secret": "x"}, audit={"sink": "none"},
        ami_proxy={**PROXY, "listen": "127.0.0.1:3", "max_sessions": 7},
        service={"instance_id": "gw9", "decision_budget_ms": 100},
    )
    need = restart_needed(running, loaded)
    assert set(need) == {"store.url", "agi.listen", "agi.max_sessions", "http.listen",
                         "ami.secret", "audit.sink", "ami_proxy.listen",
                         "service.instance_id"}
    eff = effective_config(running, loaded)
    assert (eff.store, eff.agi, eff.http, eff.ami, eff.audit) == (
        running.store, running.agi, running.http, running.ami, running.audit)
    assert eff.ami_proxy.listen == running.ami_proxy.listen
    assert eff.ami_proxy.settings.port == running.ami_proxy.settings.port
    assert eff.service.instance_id == running.service.instance_id
    # what may change is applied
    assert eff.service.decision_budget_ms == 100
    assert eff.ami_proxy.settings.max_sessions == 7
    assert "hunter2" not in " ".join(need)


def test_switching_the_proxy_on_or_off_keeps_the_running_proxy() -> None:
    running, loaded = cfg(ami_proxy=PROXY), cfg()
    assert "ami_proxy.enabled" in restart_needed(running, loaded)
    assert effective_config(running, loaded).ami_proxy == running.ami_proxy


def test_changes_are_named_without_values() -> None:
    running = cfg(ami_proxy=PROXY)
    rotated = {**PROXY, "accounts": {"vici": {"secret": "s2", "default_campaign": "demo"},
                                     "new": {"secret": "n"}}}
    loaded = load_config(None, env={}, overrides={
        "ami_proxy": rotated, "logging": {"level": "debug"}})
    changed = changed_settings(running, effective_config(running, loaded),
                               build_policy(running), build_policy(loaded))
    assert set(changed) == {"ami_proxy.accounts.vici", "ami_proxy.accounts.new",
                            "logging.level"}


def test_the_hash_follows_campaigns_and_packs_not_secrets() -> None:
    base = cfg(ami_proxy=PROXY)
    rotated = cfg(ami_proxy={**PROXY, "accounts": {"vici": {"secret": "other",
                                                            "default_campaign": "demo"}}})
    digest = config_digest(base, build_policy(base))
    assert config_digest(rotated, build_policy(rotated)) == digest
    other_region = cfg(ami_proxy=PROXY, policy={"default_region": "GB"})
    assert config_digest(other_region, build_policy(other_region)) != digest
    policy = build_policy(base)
    assert config_digest(base, replace(policy, packs=policy.packs[:1])) != digest
