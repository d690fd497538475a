"""Refusal pauses: FR D.223-9 (60 full calendar days), US TSR (company-specific DNC)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.core.engine import decide
from gateway.core.model import Reason, Suppression
from gateway.core.rules import suppression_end
from tests.core.support import attempt, consent, facts, paris, policy

REFUSED = paris(2025, 12, 1, 15, 0)  # a Monday, FR-2023 in force


def _refused(now: datetime, since: datetime = REFUSED, e164: str = "+33612345678",
             number: str = "06 12 34 56 78") -> Reason:
    f = facts(now, e164, suppressions=(Suppression("acme", since, None, "refused"),))
    return decide(attempt(number), f, policy(), now).reason


def test_d223_9_sixty_full_calendar_days_still_forbidden_on_day_60() -> None:
    """D.223-9 (décret 2022-1313): "soixante jours calendaires révolus" after the refusal:
    refused on 1 Dec, the 60 full days are 2 Dec .. 30 Jan; 30 Jan 16:00 is still
    forbidden although 60 x 86,400 s have passed at 15:00."""
    day_60 = paris(2026, 1, 30, 16, 0)
    assert day_60 - REFUSED > timedelta(days=60)
    f = facts(day_60, suppressions=(Suppression("acme", REFUSED, None, "refused"),))
    d = decide(attempt(), f, policy(), day_60)
    assert d.reason is Reason.REFUSAL_COOLDOWN
    assert any("until 2026-01-31T00:00:00+01:00" in line for line in d.trace)
    assert d.retry_after_s == int((paris(2026, 2, 2, 10, 0) - day_60).total_seconds())
    assert _refused(paris(2026, 2, 2, 10, 0)) is Reason.OK


def test_d223_9_calendar_days_counted_on_the_callees_clock() -> None:
    """Refused at 23:30 Paris on 1 Dec = 02:30 on 2 Dec in Réunion: the days are the
    callee's, so the pause ends a day later there; several zones: the latest end."""
    pack = policy().pack_for("FR", paris(2026, 1, 1, 12, 0))
    assert pack is not None
    refusal = Suppression("acme", paris(2025, 12, 1, 23, 30), None, "refused")
    paris_end = suppression_end(pack, refusal, (), ("Europe/Paris",))
    reunion_end = suppression_end(pack, refusal, (), ("Indian/Reunion",))
    both = suppression_end(pack, refusal, (), ("Europe/Paris", "Indian/Reunion"))
    assert paris_end == paris(2026, 1, 31, 0, 0)
    assert reunion_end == datetime(2026, 2, 1, tzinfo=ZoneInfo("Indian/Reunion"))
    assert both == reunion_end


def test_tsr_16_cfr_310_4_b_1_iii_a_company_specific_dnc_has_no_expiry() -> None:
    """16 CFR 310.4(b)(1)(iii)(A): the TSR gives a company-specific do-not-call request no
    expiry (the FCC's 5 years, 47 CFR 64.1200(d)(6), is the weaker rule): still blocked
    after 10 years, even with a consent collected since."""
    now = datetime.fromisoformat("2036-12-02T16:00:00+00:00")
    since = now - timedelta(days=3660)
    pol = policy(jurisdiction="US", caller_id="+12125550100")
    later = consent("+12125550123", collected_at=since + timedelta(days=1),
                    expires_at=now + timedelta(days=1))
    f = facts(now, "+12125550123", consents=(later,),
              suppressions=(Suppression("acme", since, None, "refused"),))
    d = decide(attempt("+1 212 555 0123"), f, pol, now)
    assert d.reason is Reason.REFUSAL_COOLDOWN and d.retry_after_s is None
    assert any("310.4(b)(1)(iii)(A)" in line for line in d.trace)
