"""Where a dialer may send a channel in the dialplan (pure).

An account lists two kinds of dialplan destinations, each ``"context,pattern"`` with an
Asterisk extension pattern (``_9X.``) or a literal extension (``8600051``):

- ``dial_targets``: destinations that dial the extension they are given (the carrier
  context, ``_9X. -> Dial(...)``). Sending a channel there is a new call: the extension
  (after ``strip_prefix``) is screened like the number of a ``Channel``.
- ``agent_targets``: destinations that never dial a number the dialer chose (agent
  conferences, queues, park). Sending a channel there needs no screening.

A destination in neither list is refused. A destination in both is a dial target.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum

# Asterisk truncates longer names (AST_MAX_CONTEXT / AST_MAX_EXTENSION = 80, NUL included)
_CONTEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,78}")
_EXTEN = re.compile(r"[A-Za-z0-9+*#]{1,79}")
_PATTERN = re.compile(r"_[0-9XZNxzn.!\[\]\-+*#]{1,80}")


class TargetKind(Enum):
    DIAL = "dial"
    AGENT = "agent"
    REFUSED = "refused"


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Asterisk's extension pattern (``_`` prefix) as a regex; literal text otherwise."""
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern))
    out: list[str] = []
    i, body = 0, pattern[1:]
    while i < len(body):
        ch = body[i]
        low = ch.lower()
        if low == "x":
            out.append("[0-9]")
        elif low == "z":
            out.append("[1-9]")
        elif low == "n":
            out.append("[2-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "-":
            pass  # Asterisk ignores '-' in patterns
        elif ch == "[":
            end = body.find("]", i)
            if end < 0:
                raise ValueError(f"unclosed [ in pattern {pattern!r}")
            inner = body[i + 1 : end]
            if not re.fullmatch(r"[0-9A-Za-z+*#-]+", inner):
                raise ValueError(f"bad character set in pattern {pattern!r}")
            out.append(f"[{inner}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


@dataclass(frozen=True, slots=True)
class Target:
    """One ``"context,pattern"`` entry."""

    context: str
    pattern: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, entry: str) -> Target:
        context, sep, pattern = entry.partition(",")
        context, pattern = context.strip(), pattern.strip()
        if not sep or not _CONTEXT.fullmatch(context):
            raise ValueError(f"{entry!r}: expected \"context,pattern\"")
        if not (_EXTEN.fullmatch(pattern) or _PATTERN.fullmatch(pattern)):
            raise ValueError(f"{entry!r}: not an extension or an Asterisk pattern")
        return cls(context, pattern, _pattern_regex(pattern))

    def matches(self, context: str, exten: str) -> bool:
        # Asterisk matches context names case-sensitively, extensions exactly.
        return context == self.context and self.regex.fullmatch(exten) is not None


@functools.lru_cache(maxsize=256)
def parse_targets(entries: tuple[str, ...]) -> tuple[Target, ...]:
    """Parsed entries (cached: accounts are immutable and few)."""
    return tuple(Target.parse(e) for e in entries)


def classify(
    context: str, exten: str, *, dial: tuple[Target, ...], agent: tuple[Target, ...]
) -> TargetKind:
    """What sending a channel to ``exten@context`` means for this account."""
    if not _CONTEXT.fullmatch(context) or not _EXTEN.fullmatch(exten):
        return TargetKind.REFUSED
    if any(t.matches(context, exten) for t in dial):
        return TargetKind.DIAL
    if any(t.matches(context, exten) for t in agent):
        return TargetKind.AGENT
    return TargetKind.REFUSED
