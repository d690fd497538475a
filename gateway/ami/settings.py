"""Settings of the AMI edges (frozen; the integrator maps TOML onto them).

Secrets never appear in ``repr`` (``field(repr=False)``) and are never logged.
Every limit and timeout below is listed with its default in docs/ami.md.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from gateway.ami.dialplan import Target, parse_targets
from gateway.store.prescreen import DEFAULT_PRESCREEN_TTL_S

# Actions a dialer account may send by default (docs/ami.md "Permission model"): what
# VICIdial-style dialers send, and nothing that can move a channel to an unscreened
# place or change how screening works. ``Redirect`` is here because its target is
# checked (``gateway.ami.permissions``); ``Command``, ``Atxfer``, ``BlindTransfer``,
# ``Bridge`` and the rest are not. ``MixMonitor`` is not either: Asterisk requires the
# ``system`` write class for it, which the upstream account does not get by default.
DEFAULT_ALLOWED_ACTIONS: frozenset[str] = frozenset(
    {
        "originate", "hangup", "redirect", "getvar", "setvar", "status",
        "coreshowchannels", "absolutetimeout", "queuestatus", "queuesummary",
        "stopmixmonitor", "playdtmf", "userevent", "coresettings", "corestatus",
        "meetmelist", "confbridgelist",
    }
)
# Never relayed for a dialer account, whatever its configuration says: they run CLI
# commands, write configuration or the AstDB, load modules, or read configuration
# files (secrets included).
NEVER_ALLOWED_ACTIONS: frozenset[str] = frozenset(
    {
        "command", "updateconfig", "createconfig", "getconfig", "getconfigjson",
        "dbput", "dbdel", "dbdeltree", "moduleload", "reload", "loggerrotate",
        "listcategories", "showdialplan", "sorcery_memory_cache_populate",
    }
)
# ``Command`` is relayed only for an account with ``allowed_commands``, and only for
# these CLI commands (conference control, as VICIdial sends it); never anything else:
# the CLI can originate, redirect, set globals, load modules.
COMMANDS_THAT_MAY_BE_ALLOWED: frozenset[str] = frozenset(
    f"{app} {verb}"
    for app in ("meetme", "confbridge")
    for verb in ("list", "kick", "mute", "unmute", "lock", "unlock")
)
# Headers an account can never allow (``allowed_headers``): they run dialplan or shell
# commands. "Action.*" is refused for the actions whose headers the proxy screens.
NEVER_ALLOWED_HEADERS: frozenset[str] = frozenset(
    {"originate.predialgosub", "mixmonitor.command"}
)
SCREENED_ACTIONS: frozenset[str] = frozenset(
    {"originate", "redirect", "blindtransfer", "atxfer", "getvar", "setvar", "command",
     "status", "mixmonitor"}
)
# Handled by the proxy itself (never relayed): Login, Challenge, Logoff, Ping, Events.
LOCAL_ACTIONS: frozenset[str] = frozenset({"login", "challenge", "logoff", "ping", "events"})
# Applications an Originate may run on the answered channel by default. ``Dial`` is
# screened (its data parsed like a Channel); Exec, RetryDial, System, AGI, Originate,
# Page, Gosub ... are not on the list.
DEFAULT_ALLOWED_APPLICATIONS: frozenset[str] = frozenset(
    {"dial", "playback", "wait", "echo", "confbridge", "meetme", "bridgewait", "milliwatt"}
)
# Applications that can never be allowed: they run commands or arbitrary dialplan, or
# dial numbers the proxy cannot read.
NEVER_ALLOWED_APPLICATIONS: frozenset[str] = frozenset(
    {
        "exec", "execif", "execiftime", "system", "trysystem", "retrydial", "originate",
        "page", "agi", "eagi", "fastagi", "deadagi", "gosub", "gosubif", "macro",
        "goto", "gotoif", "gotoiftime", "stasis", "dialplan", "followme", "queue",
        "chanspy", "extenspy", "dictate", "externalivr", "jack", "set", "multiset",
    }
)


@dataclass(frozen=True, slots=True)
class ProxyAccount:
    """One dialer account (``[ami_proxy.accounts.NAME]``). Defaults are locked down."""

    name: str
    secret: str = field(repr=False)
    permit: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    allowed_actions: frozenset[str] = DEFAULT_ALLOWED_ACTIONS  # lower-case names
    # Which events the dialer receives: "all", "none", or a tuple of event names
    events: str | tuple[str, ...] = "all"
    campaign_variable: str = "CAMPAIGN"  # a channel variable name, or "Account"
    default_campaign: str | None = None
    strip_prefix: str = ""  # digits the dialer prepends before the number (e.g. "9")
    # The dial string carries the country code without '+' (VICIdial: prefix+33+number)
    number_has_country_code: bool = False
    # "context,pattern" destinations that dial their extension (screened as a callee)
    dial_targets: tuple[str, ...] = ()
    # "context,pattern" destinations that never dial a number (agent side: not screened)
    agent_targets: tuple[str, ...] = ()
    allowed_applications: frozenset[str] = DEFAULT_ALLOWED_APPLICATIONS
    # CLI commands relayed through ``Action: Command`` (from COMMANDS_THAT_MAY_BE_ALLOWED)
    allowed_commands: tuple[str, ...] = ()
    # "Action.Header" (or "Action.*") headers accepted beyond the ones the proxy knows
    allowed_headers: tuple[str, ...] = ()
    # Campaigns this account may originate for (empty: only default_campaign)
    campaigns: tuple[str, ...] = ()
    allow_shadow_campaigns: bool = False  # campaigns with shadow = true
    allow_exempt_campaigns: bool = False  # consent-exempt campaigns (press = true)
    # Resolved by the configuration loader against [campaigns] (grants applied);
    # None: ``campaigns`` or ``default_campaign`` as given (library use, tests).
    usable_campaigns: frozenset[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "allowed_actions", frozenset(a.lower() for a in self.allowed_actions)
        )
        object.__setattr__(
            self, "allowed_applications",
            frozenset(a.lower() for a in self.allowed_applications),
        )
        never = self.allowed_actions & NEVER_ALLOWED_ACTIONS
        if never:
            raise ValueError(f"allowed_actions: {sorted(never)} can never be allowed")
        bad = self.allowed_applications & NEVER_ALLOWED_APPLICATIONS
        if bad:
            raise ValueError(f"allowed_applications: {sorted(bad)} can never be allowed")
        for cmd in self.allowed_commands:
            if " ".join(cmd.lower().split()) not in COMMANDS_THAT_MAY_BE_ALLOWED:
                raise ValueError(f"allowed_commands: {cmd!r} can never be allowed "
                                 f"(possible: {sorted(COMMANDS_THAT_MAY_BE_ALLOWED)})")
        for net in self.permit:
            ipaddress.ip_network(net, strict=False)  # ValueError on a bad entry
        if self.strip_prefix and not self.strip_prefix.isdigit():
            raise ValueError("strip_prefix must be digits")
        for entry in self.allowed_headers:
            action, dot, header = entry.lower().partition(".")
            if not dot or not action or not header:
                raise ValueError(f"allowed_headers: {entry!r}: expected \"Action.Header\"")
            if f"{action}.{header}" in NEVER_ALLOWED_HEADERS or (
                    header == "*" and action in SCREENED_ACTIONS):
                raise ValueError(f"allowed_headers: {entry!r} can never be allowed")
        parse_targets(self.dial_targets)  # ValueError on a bad entry
        parse_targets(self.agent_targets)

    @property
    def dial(self) -> tuple[Target, ...]:
        """``dial_targets`` parsed (cached per tuple: not a field, so never serialised)."""
        return parse_targets(self.dial_targets)

    @property
    def agent(self) -> tuple[Target, ...]:
        return parse_targets(self.agent_targets)

    def permits(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(
            addr in ipaddress.ip_network(net, strict=False) for net in self.permit
        )

    def allows(self, action: str) -> bool:
        low = action.lower()
        if low == "command":
            return bool(self.allowed_commands)  # each command checked by permissions
        return low in self.allowed_actions and low not in NEVER_ALLOWED_ACTIONS

    def allows_campaign(self, campaign_id: str) -> bool:
        if self.usable_campaigns is not None:
            return campaign_id in self.usable_campaigns
        named = self.campaigns or ((self.default_campaign,) if self.default_campaign else ())
        return campaign_id in named

    def extra_headers(self, action: str) -> frozenset[str]:
        """Lower-case header names allowed for ``action`` by ``allowed_headers``."""
        low = action.lower()
        return frozenset(
            h.lower() for a, _, h in (e.partition(".") for e in self.allowed_headers)
            if a.lower() == low
        )

    def wants_event(self, name: str) -> bool:
        if self.events == "all":
            return True
        if self.events == "none" or isinstance(self.events, str):
            return False
        low = name.lower()
        return any(e.lower() == low for e in self.events)


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """``[ami_proxy]``: the AMI server dialers log into."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 5039
    accounts: tuple[ProxyAccount, ...] = ()
    banner_version: str = "5.0.0"
    max_sessions: int = 64
    max_message_bytes: int = 64 * 1024
    max_headers: int = 256
    login_timeout_s: float = 10.0  # from connect to successful Login
    max_unauthenticated_actions: int = 8
    failed_login_delay_s: float = 1.0  # before answering a failed Login
    failed_login_limit: int = 5  # failures per source address within the window
    failed_login_window_s: float = 300.0
    send_queue_limit: int = 1000  # messages waiting for a slow dialer; then disconnect
    write_timeout_s: float = 10.0  # one drain() to a dialer
    idle_timeout_s: float = 3600.0  # no action from a logged-in dialer (send Ping to stay)
    screen_timeout_s: float = 5.0  # Screener.screen() (it has its own budget too)
    action_timeout_s: float = 60.0  # upstream response to a relayed action
    read_chunk_bytes: int = 65536
    # An allowed Originate's one-shot prescreen token lives this long: it must cover the
    # Originate's Timeout (agent side first) until the carrier context screens the call
    prescreen_ttl_s: int = DEFAULT_PRESCREEN_TTL_S

    def account(self, name: str) -> ProxyAccount | None:
        for acc in self.accounts:
            if acc.name == name:
                return acc
        return None


@dataclass(frozen=True, slots=True)
class AmiSettings:
    """``[ami]``: the real Asterisk AMI (proxy upstream and event consumer)."""

    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "dialer-gateway"
    secret: str = field(default="", repr=False)
    # The event consumer's read-only account; empty: the account above.
    events_username: str = ""
    events_secret: str = field(default="", repr=False)
    connect_timeout_s: float = 5.0
    login_timeout_s: float = 5.0
    ping_interval_s: float = 20.0  # keepalive Ping on an idle link
    ping_timeout_s: float = 10.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    reconnect_jitter: float = 0.2  # +/- fraction of each backoff delay
    max_message_bytes: int = 1024 * 1024  # Asterisk's own events can be large
    max_headers: int = 1024
    max_pending_actions: int = 1000  # in flight on the upstream link
    max_routes: int = 10000  # remembered ActionIDs for late events (OriginateResponse)
    event_queue_limit: int = 10000  # consumer: events waiting to be processed
    write_timeout_s: float = 10.0
    read_chunk_bytes: int = 65536
