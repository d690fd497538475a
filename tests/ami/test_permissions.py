"""Default deny for dialer accounts: actions, headers, variables, transfer targets."""

from __future__ import annotations

import pytest

from gateway.ami.codec import AmiMessage
from gateway.ami.permissions import Refuse, Relay, ScreenTarget, check
from gateway.ami.settings import DEFAULT_ALLOWED_ACTIONS, ProxyAccount

ACC = ProxyAccount(
    name="d", secret="x", default_campaign="c",
    dial_targets=("default,_9X.",), agent_targets=("default,_86000XX", "agents,s"),
)


def msg(*pairs: tuple[str, str]) -> AmiMessage:
    return AmiMessage(pairs)


@pytest.mark.parametrize(
    "action",
    ["command", "updateconfig", "dbput", "getconfig", "bridge", "atxfer", "blindtransfer",
     "moduleload", "originatefoo", "sendtext", "dbget"],
)
def test_not_in_the_default_allow_list(action: str) -> None:
    assert not ACC.allows(action)


def test_never_allowed_actions_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="never"):
        ProxyAccount(name="d", secret="x", allowed_actions=frozenset({"Command"}))
    with pytest.raises(ValueError, match="never"):
        ProxyAccount(name="d", secret="x", allowed_applications=frozenset({"Exec"}))


def test_default_allow_list_is_what_a_dialer_needs() -> None:
    assert {"originate", "hangup", "redirect", "status", "getvar", "setvar",
            "coreshowchannels", "queuestatus"} <= DEFAULT_ALLOWED_ACTIONS


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # attack 6: Setvar of a global, of GW_*, of a function
        ((("Variable", "GW_AGI"), ("Value", "agi://10.0.0.1")), "Channel"),
        ((("Channel", "PJSIP/a-1"), ("Variable", "gw_agi"), ("Value", "x")), "GW_"),
        ((("Channel", "PJSIP/a-1"), ("Variable", "__GW_AGI"), ("Value", "x")), "GW_"),
        ((("Channel", "PJSIP/a-1"), ("Variable", "GLOBAL(GW_AGI)"), ("Value", "x")), "plain"),
        ((("Channel", "PJSIP/a-1"), ("Variable", "CAMPAIGN"), ("Value", "x")), "campaign"),
        ((("Channel", "PJSIP/a-1"), ("Variable", "LEAD"), ("Value", "x"),
          ("Channel", "")), "repeated"),
        ((("Channel", "PJSIP/a-1"), ("Variable", "LEAD"), ("Value", "42")), None),
    ],
)
def test_setvar(pairs: tuple[tuple[str, str], ...], expected: str | None) -> None:
    verdict = check(msg(("Action", "Setvar"), *pairs), ACC, "setvar")
    if expected is None:
        assert verdict == Relay()
    else:
        assert isinstance(verdict, Refuse) and expected in verdict.message


def test_getvar_needs_a_channel_and_a_plain_name() -> None:
    assert isinstance(check(msg(("Action", "Getvar"), ("Variable", "GW_AGI")), ACC, "getvar"),
                      Refuse)
    shell = msg(("Action", "Getvar"), ("Channel", "PJSIP/a-1"), ("Variable", "SHELL(id)"))
    assert isinstance(check(shell, ACC, "getvar"), Refuse)
    ok = msg(("Action", "Getvar"), ("Channel", "PJSIP/a-1"), ("Variable", "LEAD_ID"))
    assert check(ok, ACC, "getvar") == Relay()


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # attack 1: a live call redirected into the outbound context with a number
        ((("Context", "default"), ("Exten", "90699999999")),
         ScreenTarget(exten="90699999999", context="default")),
        ((("Context", "default"), ("Exten", "8600051")), Relay()),
        ((("Context", "from-trunk"), ("Exten", "0699999999")), Refuse),
        ((("Context", "default"), ("Exten", "8600051"), ("ExtraChannel", "PJSIP/b-2"),
          ("ExtraContext", "default"), ("ExtraExten", "90699999999")),
         ScreenTarget(exten="90699999999", context="default")),
        ((("Context", "default"), ("Exten", "90611111111"), ("ExtraChannel", "PJSIP/b-2")),
         Refuse),  # both channels into the dial target: two calls
        ((("Context", "agents"), ("Exten", "s"), ("ExtraChannel", "PJSIP/b-2"),
          ("ExtraContext", "elsewhere"), ("ExtraExten", "s")), Refuse),
    ],
)
def test_redirect_target(pairs: tuple[tuple[str, str], ...], expected: object) -> None:
    verdict = check(msg(("Action", "Redirect"), ("Channel", "PJSIP/a-1"), *pairs,
                        ("Priority", "1")), ACC, "redirect")
    if expected is Refuse:
        assert isinstance(verdict, Refuse)
    else:
        assert verdict == expected


def test_transfers_need_an_explicit_context() -> None:
    bare = msg(("Action", "BlindTransfer"), ("Channel", "PJSIP/a-1"), ("Exten", "90699999999"))
    assert isinstance(check(bare, ACC, "blindtransfer"), Refuse)
    into = msg(("Action", "Atxfer"), ("Channel", "PJSIP/a-1"), ("Exten", "90699999999"),
               ("Context", "default"))
    assert check(into, ACC, "atxfer") == ScreenTarget("90699999999", "default")


@pytest.mark.parametrize(
    "pairs",
    [
        (("Action", "MixMonitor"), ("Channel", "PJSIP/a-1"), ("File", "x.wav"),
         ("Command", "rm -rf /")),
        (("Action", "MixMonitor"), ("Channel", "PJSIP/a-1"), ("File", "../../etc/x")),
        (("Action", "MixMonitor"), ("Channel", "PJSIP/a-1"), ("Options", "W(4)")),
        (("Action", "Monitor"), ("Channel", "PJSIP/a-1"), ("File", "/etc/asterisk/x")),
        (("Action", "Status"), ("Variables", "SHELL(id)")),
        (("Action", "Hangup"), ("Channel", "PJSIP/a-1"), ("Exten", "1")),
    ],
)
def test_headers_the_proxy_does_not_understand_are_refused(
        pairs: tuple[tuple[str, str], ...]) -> None:
    action = pairs[0][1].lower()
    assert isinstance(check(msg(*pairs), ACC, action), Refuse)


def test_extra_headers_only_when_allowed() -> None:
    m = msg(("Action", "Hangup"), ("Channel", "PJSIP/a-1"), ("X-Reason", "1"))
    assert isinstance(check(m, ACC, "hangup"), Refuse)
    acc = ProxyAccount(name="d", secret="x", allowed_headers=("Hangup.X-Reason",))
    assert check(m, acc, "hangup") == Relay()
    # an action the proxy does not know, explicitly allowed: its headers must be too
    acc2 = ProxyAccount(name="d", secret="x", allowed_actions=frozenset({"queuepause"}),
                        allowed_headers=("QueuePause.Interface",))
    ok = msg(("Action", "QueuePause"), ("Interface", "PJSIP/a"))
    assert check(ok, acc2, "queuepause") == Relay()
    assert isinstance(check(msg(("Action", "QueuePause"), ("Paused", "1")), acc2,
                            "queuepause"), Refuse)


def test_command_only_for_allowed_conference_commands() -> None:
    assert not ACC.allows("command")
    acc = ProxyAccount(name="d", secret="x", allowed_commands=("confbridge kick",
                                                                "ConfBridge  mute"))
    assert acc.allows("command")

    def cmd(text: str) -> object:
        return check(msg(("Action", "Command"), ("Command", text)), acc, "command")

    assert cmd("confbridge kick 8600051 all") == Relay()
    assert cmd("CONFBRIDGE mute 8600051 PJSIP/a-00000001") == Relay()
    for bad in ("confbridge list", "channel originate Local/0699999999@default app Wait 1",
                "dialplan set global GW_AGI agi://x", "confbridge kick \"8600051\"",
                "confbridge", "confbridge kick a b c d e f g"):
        assert isinstance(cmd(bad), Refuse), bad
    with pytest.raises(ValueError, match="never"):
        ProxyAccount(name="d", secret="x", allowed_commands=("channel originate",))


def test_more_headers_than_asterisk_reads_are_refused() -> None:
    """Asterisk drops headers past 128: the proxy would screen what Asterisk ignores."""
    many = msg(("Action", "UserEvent"), *((f"H{i}", "x") for i in range(130)))
    refused = check(many, ACC, "userevent")
    assert isinstance(refused, Refuse) and "headers" in refused.message
    few = msg(("Action", "UserEvent"), *((f"H{i}", "x") for i in range(100)))
    assert check(few, ACC, "userevent") == Relay()
    long_line = msg(("Action", "Hangup"), ("Channel", "PJSIP/a-" + "1" * 1000))
    assert isinstance(check(long_line, ACC, "hangup"), Refuse)


@pytest.mark.parametrize("entry", ["Originate.PreDialGoSub", "MixMonitor.Command",
                                   "Originate.*", "Redirect.*", "Setvar.*"])
def test_headers_that_can_never_be_allowed(entry: str) -> None:
    with pytest.raises(ValueError, match="never"):
        ProxyAccount(name="d", secret="x", allowed_headers=(entry,))
