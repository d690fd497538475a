"""Regression: phonenumbers read letters as keypad digits and text around a number.

``06 12 AB CD EF`` was imported as a consent for +33612222333 (a number nobody gave);
``hello 0612345679`` and ``0612345679 ext. 5`` passed imports, ``check`` and the AGI
and AMI paths. Now every entry point refuses them with a clear error.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core.engine import Plan, plan
from gateway.core.model import Attempt, Reason
from gateway.core.numbers import InvalidNumber, parse_number
from gateway.importer import ImportFileError, ImportKind, import_file
from gateway.store.memory import MemoryStore
from tests.core.support import BASE, policy

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ATTACKS = ["06 12 AB CD EF", "hello 0612345679", "0612345679 ext. 5"]
HEADER = "number,professional,product_category,collected_at,expires_at,channel,proof_ref"
TAIL = ",acme,telecom,2026-09-01T10:00:00+02:00,2027-08-31T10:00:00+02:00,web,p1"


@pytest.mark.parametrize("raw", ATTACKS)
def test_parse_refuses(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        parse_number(raw)


@pytest.mark.parametrize("raw", ATTACKS)
def test_engine_blocks_as_invalid_number(raw: str) -> None:
    """AGI arguments, AMI Originate channels and ``check`` all reach the engine's plan."""
    decision = plan(Attempt(number=raw, campaign_id=BASE.id, source="agi"), policy(), NOW)
    assert not isinstance(decision, Plan)
    assert decision.reason is Reason.INVALID_NUMBER
    assert decision.e164 is None
    assert any("letter" in line for line in decision.trace)


@pytest.mark.parametrize("kind", [ImportKind.CONSENTS, ImportKind.OPPOSITION])
async def test_imports_name_line_and_column_and_change_nothing(kind: ImportKind) -> None:
    store = MemoryStore()
    if kind is ImportKind.CONSENTS:
        data = "\n".join([HEADER, "06 12 34 56 78" + TAIL, "06 12 AB CD EF" + TAIL]) + "\n"
    else:
        data = "number\n06 12 34 56 78\n06 12 AB CD EF\n"
    with pytest.raises(ImportFileError) as err:
        await import_file(store, kind, data.encode(), now=NOW, list_source="bloctel")
    assert [(e.line, e.column) for e in err.value.errors] == [(3, "number")]
    assert "letter 'A' at character 7" in err.value.errors[0].problem
    assert await store.lists_status() == []


async def test_plain_opposition_list_with_text_around_a_number() -> None:
    store = MemoryStore()
    data = b"0612345678\nhello 0612345679\n0612345679 ext. 5\n"
    with pytest.raises(ImportFileError) as err:
        await import_file(store, ImportKind.OPPOSITION, data, now=NOW, list_source="bloctel")
    assert [(e.line, e.column) for e in err.value.errors] == [(2, "number"), (3, "number")]


@pytest.mark.parametrize("channel", ["PJSIP/0612ABCDEF@trunk", "SIP/trunk/06HELLO789",
                                     "Local/906CALLME00@vicidial-out",
                                     "PJSIP/trunk/sip:0612345678ext5@carrier.example"])
def test_ami_originate_channel_with_letters_is_refused(channel: str) -> None:
    """An Originate whose Channel carries letters never dials: the proxy refuses the
    channel, and anything it would read is screened by the engine, which refuses letters."""
    from gateway.ami.codec import AmiMessage
    from gateway.ami.originate import OriginateTarget, read_originate
    from gateway.ami.permissions import Refuse
    from gateway.ami.settings import ProxyAccount

    account = ProxyAccount(name="d", secret="x", default_campaign=BASE.id,
                           campaigns=(BASE.id,), dial_targets=("vicidial-out,_9X.",),
                           agent_targets=("default,s",), strip_prefix="9")
    msg = AmiMessage((("Action", "Originate"), ("Channel", channel), ("Context", "default"),
                      ("Exten", "s"), ("Priority", "1")))
    target = read_originate(msg, account)
    if isinstance(target, OriginateTarget):
        decision = plan(Attempt(number=target.number, campaign_id=BASE.id, source="ami"),
                        policy(), NOW)
        assert not isinstance(decision, Plan)
        assert decision.reason is Reason.INVALID_NUMBER
    else:
        assert isinstance(target, Refuse)
        assert "Channel" in target.message
