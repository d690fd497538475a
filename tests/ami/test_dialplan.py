"""Dialplan destinations of an account: Asterisk extension patterns, dial vs agent."""

from __future__ import annotations

import pytest

from gateway.ami.dialplan import Target, TargetKind, classify, parse_targets

DIAL = parse_targets(("default,_9X.", "carrier,_0[1-9]XXXXXXXX"))
AGENT = parse_targets(("default,_86000XX", "default,8365", "agents,s", "default,_9NXX"))


@pytest.mark.parametrize(
    ("context", "exten", "kind"),
    [
        ("default", "90612345678", TargetKind.DIAL),
        ("default", "9", TargetKind.REFUSED),  # "." needs one more character
        ("default", "8600051", TargetKind.AGENT),
        ("default", "860005", TargetKind.REFUSED),
        ("default", "8365", TargetKind.AGENT),
        ("default", "9234", TargetKind.DIAL),  # in both lists: a dial target wins
        ("carrier", "0612345678", TargetKind.DIAL),
        ("carrier", "0012345678", TargetKind.REFUSED),
        ("Default", "90612345678", TargetKind.REFUSED),  # context names are exact
        ("agents", "s", TargetKind.AGENT),
        ("agents", "S", TargetKind.REFUSED),
        ("default", "9061 2345678", TargetKind.REFUSED),
        ("default", "9" + "1" * 79, TargetKind.REFUSED),  # Asterisk would truncate it
        ("", "s", TargetKind.REFUSED),
    ],
)
def test_classify(context: str, exten: str, kind: TargetKind) -> None:
    assert classify(context, exten, dial=DIAL, agent=AGENT) is kind


@pytest.mark.parametrize(("pattern", "yes", "no"), [
    ("_X.", "12", "1"),
    ("_NXX", "234", "134"),
    ("_Z!", "1", "0"),
    ("_[1-3]X", "25", "45"),
    ("_9-0X.", "9012", "9-012"),  # '-' ignored in patterns
    ("8600051", "8600051", "86000512"),
])
def test_patterns(pattern: str, yes: str, no: str) -> None:
    target = Target.parse(f"ctx,{pattern}")
    assert target.matches("ctx", yes)
    assert not target.matches("ctx", no)


@pytest.mark.parametrize("entry", ["default", "default,", ",_X.", "de fault,_X.",
                                   "default,_9[X", "default,_9[^1]", "default,9 1"])
def test_bad_entries(entry: str) -> None:
    with pytest.raises(ValueError):
        Target.parse(entry)
