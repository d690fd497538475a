"""The call tracker: classification of screened calls from AMI events (time is an argument)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ami.calls import CallOutcome, CallTracker
from gateway.ami.codec import AmiMessage

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def ev(name: str, **kw: str) -> AmiMessage:
    return AmiMessage.of(("Event", name), *kw.items())


def tracker(**kw: object) -> CallTracker:
    return CallTracker(agent_delay_s=lambda _c, _t: 2.0, **kw)  # type: ignore[arg-type]


def start(t: CallTracker, uid: str = "u1", dec: str = "d1", campaign: str = "spring") -> None:
    assert t.on_event(ev("VarSet", Uniqueid=uid, Variable="CAMPAIGN", Value=campaign), at(0)) == []
    assert t.on_event(ev("VarSet", Uniqueid=uid, Variable="GW_DECISION_ID", Value=dec), at(0)) == []


def up(uid: str = "u1") -> AmiMessage:
    return ev("Newstate", Uniqueid=uid, ChannelState="6", ChannelStateDesc="Up")


def test_answered_and_not_bridged_within_the_delay_is_abandoned_at_the_deadline() -> None:
    t = tracker()
    start(t)
    t.on_event(up(), at(1))
    assert t.next_deadline() == at(3)
    assert t.due(at(2.9)) == []
    (c,) = t.due(at(3))
    assert (c.call_id, c.campaign_id, c.outcome, c.at) == ("d1", "spring",
                                                           CallOutcome.ABANDONED, at(1))
    # the later hangup does not count the call twice
    assert t.on_event(ev("Hangup", Uniqueid="u1", Cause="16"), at(10)) == []
    assert len(t) == 0


def test_bridged_to_an_agent_within_the_delay() -> None:
    t = tracker()
    start(t)
    t.on_event(up(), at(1))
    assert t.on_event(ev("BridgeEnter", Uniqueid="u1", BridgeUniqueid="b",
                         BridgeNumChannels="1"), at(1.5)) == []
    (c,) = t.on_event(ev("BridgeEnter", Uniqueid="agent", BridgeUniqueid="b",
                         BridgeNumChannels="2"), at(2.5))
    assert c.outcome is CallOutcome.BRIDGED
    assert t.due(at(100)) == []


def test_bridged_after_the_delay_stays_abandoned() -> None:
    t = tracker()
    start(t)
    t.on_event(up(), at(0))
    (c,) = t.due(at(2))
    assert c.outcome is CallOutcome.ABANDONED
    assert t.on_event(ev("BridgeEnter", Uniqueid="u1", BridgeUniqueid="b",
                         BridgeNumChannels="2"), at(5)) == []


def test_hangup_right_after_answer_is_abandoned() -> None:
    t = tracker()
    start(t)
    t.on_event(up(), at(0))
    (c,) = t.on_event(ev("Hangup", Uniqueid="u1", Cause="16"), at(0.5))
    assert c.outcome is CallOutcome.ABANDONED


def test_not_answered_and_system_hangups() -> None:
    t = tracker()
    start(t, "u1", "d1")
    start(t, "u2", "d2")
    (a,) = t.on_event(ev("Hangup", Uniqueid="u1", Cause="19"), at(30))
    (b,) = t.on_event(ev("Hangup", Uniqueid="u2", Cause="34"), at(1))
    assert (a.outcome, b.outcome) == (CallOutcome.NOT_ANSWERED, CallOutcome.SYSTEM_HANGUP)


def test_a_bridge_between_other_channels_is_not_our_agent() -> None:
    t = tracker()
    start(t)
    t.on_event(up(), at(0))
    # the callee leg (Local;2 and the trunk) is bridged, the party channel is not
    assert t.on_event(ev("BridgeEnter", Uniqueid="local2", BridgeUniqueid="x",
                         BridgeNumChannels="2"), at(0.1)) == []
    assert t.due(at(2))[0].outcome is CallOutcome.ABANDONED


def test_campaign_from_the_proxy_registry_wins() -> None:
    t = tracker(campaign_of={"d1": "from-proxy"}.get)
    start(t, campaign="from-var")
    t.on_event(up(), at(0))
    assert t.due(at(2))[0].campaign_id == "from-proxy"


def test_unknown_channels_are_ignored() -> None:
    t = tracker()
    assert t.on_event(up("other"), at(0)) == []
    assert t.on_event(ev("Hangup", Uniqueid="other", Cause="16"), at(1)) == []
    assert t.next_deadline() is None


def test_memory_is_bounded() -> None:
    t = tracker(max_calls=10)
    for i in range(50):
        start(t, f"u{i}", f"d{i}")
    assert len(t) == 10


_steps = st.lists(
    st.tuples(st.sampled_from(["up", "bridge1", "bridge2", "hangup", "tick"]),
              st.integers(0, 3), st.floats(0, 5)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_steps)
def test_every_call_is_classified_at_most_once_and_answered_ones_count(
    steps: list[tuple[str, int, float]]
) -> None:
    t = tracker()
    for i in range(4):
        start(t, f"u{i}", f"d{i}")
    seen: list[tuple[str, CallOutcome]] = []
    now = 0.0
    for kind, i, dt in steps:
        now += dt
        uid = f"u{i}"
        if kind == "up":
            out = t.on_event(up(uid), at(now))
        elif kind == "bridge1":
            out = t.on_event(ev("BridgeEnter", Uniqueid=uid, BridgeUniqueid=f"b{i}",
                                BridgeNumChannels="1"), at(now))
        elif kind == "bridge2":
            out = t.on_event(ev("BridgeEnter", Uniqueid="agent", BridgeUniqueid=f"b{i}",
                                BridgeNumChannels="2"), at(now))
        elif kind == "hangup":
            out = t.on_event(ev("Hangup", Uniqueid=uid, Cause="16"), at(now))
        else:
            out = t.due(at(now))
        seen.extend((c.call_id, c.outcome) for c in out)
    ids = [cid for cid, _ in seen]
    assert len(ids) == len(set(ids))
