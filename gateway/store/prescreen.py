"""One-shot prescreen tokens (belt and braces: AMI proxy screen + carrier FastAGI screen).

When the AMI proxy's screen of an ``Originate`` counts the attempt, the store also
writes a token bound to that decision id and to the callee's number (the key holds
both), valid ``ttl_s`` seconds. The FastAGI screen of the same call in the carrier
context presents the decision id (``GW_DECISION_ID``); ``load_facts`` reads **and
deletes** the token in the same request (one-shot), and when it matches (same number,
same professional, not expired) leaves the proxy's own attempt out of the facts, so
the call counts once. A missing, used, expired or mismatched token is no token.

Value (both stores): compact JSON ``{"e": e164, "p": professional, "c": campaign,
"t": counted at (epoch ms), "x": expires at (epoch ms)}``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from gateway.core.model import Prescreen
from gateway.store import codec

# The longest a token stays valid; it must cover the Originate's own Timeout (the
# agent side may ring first, then the call reaches the carrier context) and queueing.
DEFAULT_PRESCREEN_TTL_S = 120
MAX_PRESCREEN_TTL_S = 3600
# A decision id as presented by the dialplan: anything else is ignored (no token read).
PRESCREEN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def valid_id(decision_id: str | None) -> bool:
    return decision_id is not None and PRESCREEN_ID.fullmatch(decision_id) is not None


def encode(*, e164: str, professional: str, campaign_id: str, at_ms: int, ttl_s: int) -> str:
    return json.dumps({"e": e164, "p": professional, "c": campaign_id, "t": at_ms,
                       "x": at_ms + ttl_s * 1000}, separators=(",", ":"))


def match(raw: str | bytes | None, *, decision_id: str, e164: str, professional: str,
          now: datetime) -> Prescreen | None:
    """The token, if ``raw`` is one for this number and professional, unexpired at ``now``.

    Never raises: a value that is not a token is no token (the call is then screened and
    counted as usual).
    """
    if raw is None:
        return None
    try:
        value = json.loads(raw)
        if not isinstance(value, dict):
            return None
        ok = (value["e"] == e164 and value["p"] == professional
              and codec.to_ms(now) <= int(value["x"]))
        return Prescreen(decision_id=decision_id, campaign_id=str(value["c"]),
                         at=codec.from_ms(int(value["t"]))) if ok else None
    except (ValueError, TypeError, KeyError, OverflowError):
        return None
