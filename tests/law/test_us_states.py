"""US state packs layered over US-FEDERAL by the callee's area code (stricter wins)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dateutil.easter import easter
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.calendar import check_zone, holidays_for
from gateway.core.engine import decide, plan
from gateway.core.model import Decision, ListInfo, OppositionEntry, Reason, Verdict
from gateway.core.nanp import ANY_STATE, us_states
from gateway.core.policy import Policy
from gateway.packs import builtin_packs
from tests.core.support import attempt, facts, policy

US = policy(jurisdiction="US", caller_id="+12125550100")
MIAMI, TULSA, BALTIMORE, NYC = "+13055550123", "+19185550123", "+14105550123", "+12125550123"
DALLAS, HARTFORD, BOSTON, JACKSON = "+12145550123", "+18605550123", "+16175550123", "+16015550123"
SEATTLE, SALT_LAKE, PROVIDENCE = "+12065550123", "+18015550123", "+14015550123"
ALBUQUERQUE = "+15055550123"
INDIANAPOLIS, ST_LOUIS, NASHVILLE = "+13175550123", "+13145550123", "+16155550123"
NEW_ORLEANS = "+15045550123"
WASHINGTON_DC = "+12025550123"  # no state layer: the federal rules only
STATE_LISTS = ("opposition:ndnc", "opposition:fl_dnc", "opposition:tx_dnc", "opposition:ma_dnc",
               "opposition:ms_dnc", "opposition:in_dnc", "opposition:mo_dnc", "opposition:tn_dnc",
               "opposition:la_dnc", "opposition:co_dnc", "opposition:pa_dnc", "opposition:wy_tps")


def at_local(hour: int, minute: int = 0, second: int = 0, offset: int = -5) -> datetime:
    return datetime.fromisoformat(f"2026-12-01T{hour:02d}:{minute:02d}:{second:02d}"
                                  f"{offset:+03d}:00")


def _us_facts(now: datetime, e164: str, **kw: object) -> object:
    lists = tuple(ListInfo(n, 1, now - timedelta(days=1), 10) for n in STATE_LISTS)
    return facts(now, e164, lists=lists, **kw)


def _reason(e164: str, now: datetime, **kw: object) -> Reason:
    return decide(attempt(e164), _us_facts(now, e164, **kw), US, now).reason  # type: ignore[arg-type]


def test_nanp_area_code_selects_the_state() -> None:
    assert us_states(MIAMI) == ("FL",)
    assert us_states(TULSA) == ("OK",)
    assert us_states(BALTIMORE) == ("MD",)
    assert us_states("+14165550100") == ()  # Toronto: not a US state
    planned = plan(attempt(MIAMI), US, at_local(12))
    assert not isinstance(planned, type(None))
    assert [p.id for p in planned.layers] == ["US-FL"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("e164", "statute"), [
    (MIAMI, "501.059(8)(a)"), (TULSA, "775C"), (BALTIMORE, "14-4501")])
def test_mini_tcpa_states_no_call_after_8_pm(e164: str, statute: str) -> None:
    """Fla. Stat. § 501.059(8)(a), Okla. Stat. tit. 15 § 775C, Md. Com. Law § 14-4501 et
    seq.: not before 8 a.m. nor after 8 p.m. in the callee's time (federal: 9 p.m.)."""
    offset = -6 if e164 == TULSA else -5
    assert _reason(e164, at_local(20, 0, 0, offset)) is Reason.OK  # 8 p.m. itself
    late = at_local(20, 0, 1, offset)
    d = decide(attempt(e164), _us_facts(late, e164), US, late)  # type: ignore[arg-type]
    assert d.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-") and "outside" in line for line in d.trace)
    assert _reason(NYC, at_local(20, 30)) is Reason.OK  # New York: federal rule only


def test_fla_stat_501_059_8_b_at_most_three_calls_in_24_hours() -> None:
    now = at_local(12)
    three = tuple(now - timedelta(hours=h) for h in (1, 2, 3))
    d = decide(attempt(MIAMI), _us_facts(now, MIAMI, attempts=three), US, now)  # type: ignore[arg-type]
    assert d.reason is Reason.FREQUENCY_CAP
    assert (d.attempts_limit, d.attempt_window_s) == (3, 86400)
    assert _reason(NYC, now, attempts=three) is Reason.OK


def test_fla_stat_501_059_florida_do_not_call_list_must_be_fresh() -> None:
    now = at_local(12)
    only_ndnc = facts(now, MIAMI, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    assert decide(attempt(MIAMI), only_ndnc, US, now).reason is Reason.LIST_STALE


def test_state_packs_are_effective_dated() -> None:
    """Maryland's Stop the Spam Calls Act applies from 2024-01-01."""
    before = datetime.fromisoformat("2023-12-01T20:30:00-05:00")
    assert _reason(BALTIMORE, before) is Reason.OK
    after = datetime.fromisoformat("2024-12-03T20:30:00-05:00")
    assert _reason(BALTIMORE, after) is Reason.OUTSIDE_HOURS


def test_unknown_state_takes_every_state_pack() -> None:
    """A US number whose state cannot be told: the intersection of every state's rules."""
    pol = US
    layers = pol.layers_for("US", (ANY_STATE,), at_local(12))
    assert {p.id for p in layers} == {"US-FL", "US-OK", "US-MD", "US-TX", "US-CT", "US-MA",
                                      "US-MS", "US-WA", "US-UT", "US-RI", "US-NM",
                                      "US-IN", "US-MO", "US-TN", "US-LA",
                                      "US-MN", "US-ME", "US-NJ", "US-NY", "US-GA", "US-CO",
                                      "US-AL", "US-PA", "US-KY", "US-WY", "US-MI", "US-NV",
                                      "US-CA", "US-WI", "US-OR", "US-OH", "US-KS", "US-SD",
                                      "US-ID",
                                      "US-VA", "US-AZ", "US-IL", "US-SC", "US-NC", "US-ND",
                                      "US-AR"}


def test_47_cfr_64_1200_c_1_nine_pm_exactly_is_still_allowed() -> None:
    """47 CFR 64.1200(c)(1): no call "before 8 a.m. or after 9 p.m." — 21:00:00 is not after
    (Washington, D.C.: no state layer; New York's own hours refuse 21:00:00)."""
    assert _reason(WASHINGTON_DC, at_local(21, 0, 0)) is Reason.OK
    assert _reason(WASHINGTON_DC, at_local(21, 0, 1)) is Reason.OUTSIDE_HOURS
    assert _reason(WASHINGTON_DC, at_local(7, 59, 59)) is Reason.OUTSIDE_HOURS


def local(day: str, hms: str, offset: int) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}{offset:+03d}:00")


TUESDAY, SUNDAY = "2026-12-01", "2026-12-06"


def _layer_lines(e164: str, now: datetime, layer: str) -> list[str]:
    d = decide(attempt(e164), _us_facts(now, e164), US, now)  # type: ignore[arg-type]
    return [line for line in d.trace if line.startswith(f"[{layer}]")]


def test_tex_bus_com_code_301_051_nine_to_nine_and_sunday_from_noon() -> None:
    """Tex. Bus. & Com. Code § 301.051: not before 9 a.m. nor after 9 p.m. on a weekday or
    Saturday, not before noon nor after 9 p.m. on a Sunday (Dallas: UTC-6 in December)."""
    assert _reason(DALLAS, local(TUESDAY, "08:59:59", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(DALLAS, local(TUESDAY, "09:00:00", -6)) is Reason.OK
    assert _reason(DALLAS, local(TUESDAY, "21:00:00", -6)) is Reason.OK
    assert _reason(DALLAS, local(TUESDAY, "21:00:01", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(DALLAS, local(SUNDAY, "11:59:59", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(DALLAS, local(SUNDAY, "12:00:00", -6)) is Reason.OK
    assert any("outside the Sun windows (12:00-21:00:01)" in line
               for line in _layer_lines(DALLAS, local(SUNDAY, "10:00:00", -6), "US-TX"))
    assert _reason(NYC, local(SUNDAY, "10:00:00", -5)) is Reason.OK  # federal rule only


def test_tex_bus_com_code_304_052_texas_no_call_list() -> None:
    """§ 304.051-.052: the Texas no-call list (published quarterly) must be imported and
    fresh, and a number on it is not called."""
    now = local(TUESDAY, "12:00:00", -6)
    only_ndnc = facts(now, DALLAS, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    assert decide(attempt(DALLAS), only_ndnc, US, now).reason is Reason.LIST_STALE
    listed = _us_facts(now, DALLAS, oppositions=(OppositionEntry("tx_dnc"),))
    assert decide(attempt(DALLAS), listed, US, now).reason is Reason.OPPOSITION  # type: ignore[arg-type]
    assert _reason(NYC, now, oppositions=(OppositionEntry("tx_dnc"),)) is Reason.OPPOSITION


def test_conn_gen_stat_42_288a_public_act_23_98_nine_am_to_eight_pm() -> None:
    """Conn. Gen. Stat. § 42-288a (Public Act 23-98, from 2023-10-01): not before 9 a.m. nor
    after 8 p.m.; the state listing is the National DNC (no list of its own)."""
    assert _reason(HARTFORD, local(TUESDAY, "08:59:59", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(HARTFORD, local(TUESDAY, "09:00:00", -5)) is Reason.OK
    assert _reason(HARTFORD, local(TUESDAY, "19:59:59", -5)) is Reason.OK
    assert _reason(HARTFORD, local(TUESDAY, "20:00:00", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(HARTFORD, local("2023-09-26", "08:30:00", -4)) is Reason.OK  # before the act
    assert US.layers_for("US", ("CT",), local(TUESDAY, "12:00:00", -5))[0].opposition \
        .required_lists == ()


def test_201_cmr_12_02_massachusetts_eight_to_eight_and_registry() -> None:
    """201 CMR 12.02(1)-(2), M.G.L. c. 159C: no call between 8 p.m. and 8 a.m.; the quarterly
    Massachusetts do-not-call registry must be imported and fresh."""
    assert _reason(BOSTON, local(TUESDAY, "07:59:59", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(BOSTON, local(TUESDAY, "08:00:00", -5)) is Reason.OK
    assert _reason(BOSTON, local(TUESDAY, "19:59:59", -5)) is Reason.OK
    assert _reason(BOSTON, local(TUESDAY, "20:00:00", -5)) is Reason.OUTSIDE_HOURS
    now = local(TUESDAY, "12:00:00", -5)
    only_ndnc = facts(now, BOSTON, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    d = decide(attempt(BOSTON), only_ndnc, US, now)
    assert d.reason is Reason.LIST_STALE
    assert "[US-MA] lists: required list opposition:ma_dnc was never imported" in d.trace


def test_miss_code_77_3_723_no_sunday_and_central_standard_time() -> None:
    """Miss. Code Ann. § 77-3-723: 8 a.m. to 8 p.m. Central Standard Time, never on a Sunday,
    never to a number on the no-calls database. Read safely all year: 09:00-20:00 local
    (8 a.m. CST is 9 a.m. CDT)."""
    assert _reason(JACKSON, local(SUNDAY, "12:00:00", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(JACKSON, local(TUESDAY, "08:30:00", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(JACKSON, local(TUESDAY, "09:00:00", -6)) is Reason.OK
    assert _reason(JACKSON, local(TUESDAY, "20:00:00", -6)) is Reason.OUTSIDE_HOURS
    summer = local("2026-07-07", "20:30:00", -5)  # 19:30 CST: the local clock governs
    assert _reason(JACKSON, summer) is Reason.OUTSIDE_HOURS
    now = local(TUESDAY, "12:00:00", -6)
    assert _reason(JACKSON, now, oppositions=(OppositionEntry("ms_dnc"),)) is Reason.OPPOSITION


def test_state_layer_retry_after_is_open_in_every_layer() -> None:
    """Sunday 10:00 in Dallas: the next instant open under US-FEDERAL and US-TX is 12:00."""
    now = local(SUNDAY, "10:00:00", -6)
    d = decide(attempt(DALLAS), _us_facts(now, DALLAS), US, now)  # type: ignore[arg-type]
    assert d.retry_after_s == 2 * 3600


def test_exchange_in_another_state_than_its_area_code_gets_both_states() -> None:
    """The geocoding data puts 201-631 in "New York, NY" though 201 is a New Jersey area
    code: the number gets both states, so both states' layers apply (the intersection).
    An exchange the data does not place gets its area code's state (983: Colorado), not
    every layer; a number with no state at all (toll-free 800) still gets every layer."""
    assert us_states("+12016310123") == ("NJ", "NY")
    assert us_states("+12012000123") == ("NJ",)
    assert us_states("+19836000123") == ("CO",)
    assert us_states("+18005550123") == (ANY_STATE,)
    now = at_local(12)
    assert [p.id for p in US.layers_for("US", us_states("+12016310123"), now)] == [
        "US-NJ", "US-NY"]
    assert {"US-RI", "US-UT", "US-NM"} <= {
        p.id for p in US.layers_for("US", us_states("+18005550123"), now)}


def test_washington_area_codes_are_read_as_washington() -> None:
    """The geocoding data names WA's area codes "Washington State": a Seattle number whose
    exchange it does not list is in WA, not of an unknown state (every layer)."""
    assert us_states(SEATTLE) == ("WA",)
    assert us_states("+15095550123") == ("WA",)
    assert us_states("+12025550123") == ("DC",)


def test_rcw_19_158_040_2_washington_eight_am_to_eight_pm() -> None:
    """RCW 19.158.040(2): no call received before 8:00 a.m. or after 8:00 p.m. at the
    recipient's local time (20:00:00 is not after 8 p.m.); Seattle: UTC-8 in December."""
    assert _reason(SEATTLE, local(TUESDAY, "07:59:59", -8)) is Reason.OUTSIDE_HOURS
    assert _reason(SEATTLE, local(TUESDAY, "08:00:00", -8)) is Reason.OK
    assert _reason(SEATTLE, local(TUESDAY, "20:00:00", -8)) is Reason.OK
    late = local(TUESDAY, "20:00:01", -8)
    assert _reason(SEATTLE, late) is Reason.OUTSIDE_HOURS
    assert any("outside" in line for line in _layer_lines(SEATTLE, late, "US-WA"))


def _decision(e164: str, now: datetime) -> Decision:
    return decide(attempt(e164), _us_facts(now, e164), US, now)  # type: ignore[arg-type]


def test_utah_code_13_25a_103_3_eight_to_nine_never_sunday() -> None:
    """Utah Code § 13-25a-103(3): no telephone solicitation "between the hours of 9 p.m.
    and 8 a.m. local time" (21:00:00 refused, as US-MA's "between"), nor on a Sunday;
    Salt Lake City is UTC-7 in December."""
    assert us_states(SALT_LAKE) == ("UT",)
    assert _reason(SALT_LAKE, local(TUESDAY, "07:59:59", -7)) is Reason.OUTSIDE_HOURS
    assert _reason(SALT_LAKE, local(TUESDAY, "08:00:00", -7)) is Reason.OK
    assert _reason(SALT_LAKE, local(TUESDAY, "20:59:59", -7)) is Reason.OK
    assert _reason(SALT_LAKE, local(TUESDAY, "21:00:00", -7)) is Reason.OUTSIDE_HOURS
    assert _reason(SALT_LAKE, local("2026-12-05", "12:00:00", -7)) is Reason.OK  # Saturday
    assert _reason(SALT_LAKE, local(SUNDAY, "12:00:00", -7)) is Reason.OUTSIDE_HOURS
    assert _reason(NYC, local(SUNDAY, "12:00:00", -5)) is Reason.OK  # federal rule only


@pytest.mark.parametrize(("day", "offset", "name"), [
    ("2027-07-23", -6, "Pioneer Day (observed)"),  # 24 July 2027 is a Saturday
    ("2027-07-24", -6, "Pioneer Day"),  # the day itself: blocked too (stricter)
    ("2027-02-15", -7, "Washington and Lincoln Day"),
    ("2026-12-25", -7, "Christmas Day"),
])
def test_utah_code_13_25a_103_3_c_no_call_on_a_utah_legal_holiday(
        day: str, offset: int, name: str) -> None:
    """§ 13-25a-103(3)(c) with § 63G-1-301: Utah's legal holidays, Pioneer Day included
    (kept on the Friday before when 24 July is a Saturday), block the call; the same day
    is callable in New York."""
    now = local(day, "12:00:00", offset)
    d = _decision(SALT_LAKE, now)
    assert d.reason is Reason.HOLIDAY
    assert any(line.startswith("[US-UT]") and name in line for line in d.trace), d.trace
    assert _reason(NYC, local(day, "12:00:00", offset + 1)) is Reason.OK
    # the layer's retry instant is the next lawful one: 08:00 on a later, open day
    assert d.retry_after_s is not None
    retry = (now + timedelta(seconds=d.retry_after_s)).astimezone(now.tzinfo)
    assert retry.date() > now.date() and retry.hour == 8
    assert _reason(SALT_LAKE, retry) is Reason.OK


def test_r_i_gen_laws_5_61_2_hours_of_operation() -> None:
    """R.I. Gen. Laws §§ 5-61-2(2), 5-61-3.6: Monday-Friday 9:00 a.m. to 6:00 p.m.,
    Saturday 10:00 a.m. to 5:00 p.m. (the ends refused: the safe reading), never on a
    Sunday; Providence is UTC-5 in December."""
    assert us_states(PROVIDENCE) == ("RI",)
    assert _reason(PROVIDENCE, local(TUESDAY, "08:59:59", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(PROVIDENCE, local(TUESDAY, "09:00:00", -5)) is Reason.OK
    assert _reason(PROVIDENCE, local(TUESDAY, "17:59:59", -5)) is Reason.OK
    assert _reason(PROVIDENCE, local(TUESDAY, "18:00:00", -5)) is Reason.OUTSIDE_HOURS
    saturday = "2026-12-05"
    assert _reason(PROVIDENCE, local(saturday, "09:59:59", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(PROVIDENCE, local(saturday, "10:00:00", -5)) is Reason.OK
    assert _reason(PROVIDENCE, local(saturday, "17:00:00", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(PROVIDENCE, local(SUNDAY, "12:00:00", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(NYC, local(TUESDAY, "19:00:00", -5)) is Reason.OK  # federal rule only
    evening = _decision(PROVIDENCE, local(TUESDAY, "19:00:00", -5))
    assert evening.retry_after_s == 14 * 3600  # Wednesday 09:00


@pytest.mark.parametrize(("day", "offset", "name"), [
    ("2027-08-09", -4, "Victory Day"),  # state holiday, second Monday of August
    ("2027-05-04", -4, "state legal holiday (RI)"),  # Rhode Island Independence Day
    ("2027-06-18", -4, "Juneteenth"),  # federal holiday (observed on the Friday)
    ("2027-02-15", -5, "Washington's Birthday"),  # federal holiday
])
def test_r_i_gen_laws_5_61_2_except_a_state_or_federal_holiday(
        day: str, offset: int, name: str) -> None:
    """§ 5-61-2(2): "Monday through Friday, except a state or federal holiday"
    (§ 25-1-1: Victory Day, 4 May; the federal holidays)."""
    d = _decision(PROVIDENCE, local(day, "12:00:00", offset))
    assert d.reason is Reason.HOLIDAY
    assert any(line.startswith("[US-RI]") and name in line for line in d.trace), d.trace
    assert _reason(NYC, local(day, "12:00:00", offset)) is Reason.OK


def test_nmsa_57_12_22_b_5_nine_am_to_nine_pm() -> None:
    """NMSA 1978 § 57-12-22(B)(5): no telephone solicitation "received before 9:00 a.m. or
    after 9:00 p.m." (21:00:00 is not after 9 p.m.), every day; Albuquerque is UTC-7 in
    December."""
    assert us_states(ALBUQUERQUE) == ("NM",)
    assert _reason(ALBUQUERQUE, local(TUESDAY, "08:59:59", -7)) is Reason.OUTSIDE_HOURS
    assert _reason(ALBUQUERQUE, local(TUESDAY, "09:00:00", -7)) is Reason.OK
    assert _reason(ALBUQUERQUE, local(SUNDAY, "09:00:00", -7)) is Reason.OK
    assert _reason(ALBUQUERQUE, local(TUESDAY, "21:00:00", -7)) is Reason.OK
    late = local(TUESDAY, "21:00:01", -7)
    assert _reason(ALBUQUERQUE, late) is Reason.OUTSIDE_HOURS
    assert any("outside" in line for line in _layer_lines(ALBUQUERQUE, late, "US-NM"))
    assert _reason(NYC, local(TUESDAY, "08:30:00", -5)) is Reason.OK  # federal rule only


def _with_list_age(e164: str, now: datetime, name: str, age: timedelta) -> Reason:
    lists = tuple(ListInfo(n, 1, now - (age if n == name else timedelta(days=1)), 10)
                  for n in STATE_LISTS)
    return decide(attempt(e164), facts(now, e164, lists=lists), US, now).reason


@pytest.mark.parametrize(("e164", "source", "max_age_days", "statute"), [
    (INDIANAPOLIS, "in_dnc", 92, "IC 24-4.7-3-1, 24-4.7-4-1"),
    (ST_LOUIS, "mo_dnc", 92, "RSMo 407.1098, 407.1101"),
    (NASHVILLE, "tn_dnc", 31, "Tenn. Comp. R. & Regs. 1220-04-11-.03(4)"),
])
def test_ic_24_4_7_rsmo_407_1098_tca_65_4_405_state_do_not_call_lists(
        e164: str, source: str, max_age_days: int, statute: str) -> None:
    """Indiana's quarterly listing (IC 24-4.7-3-1), Missouri's quarterly no-call list
    (RSMo 407.1098, 407.1101) and Tennessee's register, updated at the beginning of each
    month (T.C.A. § 65-4-405, 1220-04-11-.03(4)): imported, fresh, and a number on it is not
    called."""
    now = local(TUESDAY, "12:00:00", -6 if e164 != INDIANAPOLIS else -5)
    layer = f"US-{us_states(e164)[0]}"
    assert _reason(e164, now) is Reason.OK, statute
    only_ndnc = facts(now, e164, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    d = decide(attempt(e164), only_ndnc, US, now)
    assert d.reason is Reason.LIST_STALE
    assert f"[{layer}] lists: required list opposition:{source} was never imported" in d.trace
    name = f"opposition:{source}"
    assert _with_list_age(e164, now, name, timedelta(days=max_age_days - 1)) is Reason.OK
    assert _with_list_age(e164, now, name, timedelta(days=max_age_days, seconds=1)) \
        is Reason.LIST_STALE
    assert _reason(e164, now, oppositions=(OppositionEntry(source),)) is Reason.OPPOSITION


def test_tenn_comp_r_regs_1220_04_11_02_eight_am_to_nine_pm() -> None:
    """Tenn. Comp. R. & Regs. 1220-04-11-.02(1): no call "at any time other than between
    8:00 a.m. to 9:00 p.m." (21:00:00 refused, as US-MA's "between"); Nashville is UTC-6
    in December. Indiana and Missouri have no hours of their own: 21:00:00 is allowed
    there (the federal rule)."""
    assert _reason(NASHVILLE, local(TUESDAY, "07:59:59", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(NASHVILLE, local(TUESDAY, "08:00:00", -6)) is Reason.OK
    assert _reason(NASHVILLE, local(TUESDAY, "20:59:59", -6)) is Reason.OK
    assert _reason(NASHVILLE, local(TUESDAY, "21:00:00", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(ST_LOUIS, local(TUESDAY, "21:00:00", -6)) is Reason.OK
    assert _reason(INDIANAPOLIS, local(TUESDAY, "21:00:00", -5)) is Reason.OK
    assert _reason(INDIANAPOLIS, local(TUESDAY, "21:00:01", -5)) is Reason.OUTSIDE_HOURS


def test_la_rs_45_844_14_monthly_do_not_call_listing() -> None:
    """La. R.S. 45:844.14(A)(2)(b): the Commission's "do not call" listing is updated
    monthly from 2006-01-01: imported and no older than 31 days, and a number on it is not
    called; before 2006 the layer is not in force (the quarterly listing is not modelled)."""
    now = local(TUESDAY, "12:00:00", -6)
    assert _reason(NEW_ORLEANS, now) is Reason.OK
    name = "opposition:la_dnc"
    assert _with_list_age(NEW_ORLEANS, now, name, timedelta(days=30)) is Reason.OK
    assert _with_list_age(NEW_ORLEANS, now, name, timedelta(days=31, seconds=1)) \
        is Reason.LIST_STALE
    assert _reason(NEW_ORLEANS, now, oppositions=(OppositionEntry("la_dnc"),)) \
        is Reason.OPPOSITION
    assert [p.id for p in US.layers_for("US", ("LA",), now)] == ["US-LA"]
    assert US.layers_for("US", ("LA",), local("2005-12-31", "23:59:59", -6)) == ()


@pytest.mark.parametrize(("e164", "day", "offset", "layer"), [
    (SALT_LAKE, "2027-06-21", -6, "US-UT"),  # Juneteenth on a Saturday: the Monday after
    (SALT_LAKE, "2029-06-18", -6, "US-UT"),  # 19 June 2029 a Tuesday: the Monday before
    (SALT_LAKE, "2027-03-26", -6, "US-UT"),  # Good Friday [U]
    (PROVIDENCE, "2028-11-07", -5, "US-RI"),  # election day
    (PROVIDENCE, "2027-12-27", -5, "US-RI"),  # Christmas on a Saturday: state employees' Monday
    (PROVIDENCE, "2031-05-05", -4, "US-RI"),  # 4 May on a Sunday: the day following it
])
def test_utah_code_63g_1_301_and_r_i_gen_laws_25_1_1_days_the_library_lacks(
        e164: str, day: str, offset: int, layer: str) -> None:
    """Utah Code § 63G-1-301 (2025: Juneteenth kept on a Monday; 2026: Good Friday [U]) and
    R.I. Gen. Laws § 25-1-1 (election day, the Monday after a Saturday holiday [U], the day
    after a Sunday holiday) give legal holidays the holidays library does not list: the
    packs list them in ``[holidays.extra_days]`` for 2026-2035, and they block."""
    d = _decision(e164, local(day, "12:00:00", offset))
    assert d.reason is Reason.HOLIDAY
    assert any(line.startswith(f"[{layer}]") and "state legal holiday" in line
               for line in d.trace), d.trace
    assert _reason(NYC, local(day, "12:00:00", -5 if offset == -6 else offset)) is Reason.OK


def _monday_before_or_after(day: date) -> date:
    if day.weekday() in (1, 2, 3, 4):
        return day - timedelta(days=day.weekday())
    return day + timedelta(days=(7 - day.weekday()) % 7)


def test_extra_days_are_the_stated_rules_for_2026_to_2035() -> None:
    """The dates typed into the packs are what the rules give, year by year (a typo here
    would let a call through on a holiday or block a lawful day)."""
    packs = {p.id: p for p in builtin_packs()}
    years = range(2026, 2036)
    ut = dict(packs["US-UT"].holidays.extra_days)["UT"]
    expected_ut = {_monday_before_or_after(date(y, 6, 19)) for y in years} - {
        date(y, 6, 19) for y in years}
    expected_ut |= {easter(y) - timedelta(days=2) for y in years if y >= 2027}
    assert set(ut) == expected_ut
    ri = dict(packs["US-RI"].holidays.extra_days)["RI"]
    elections = {d for y in years if y % 2 == 0
                 for d in (date(y, 11, 2 + (7 - date(y, 11, 1).weekday()) % 7),)}
    saturdays = {date(y, m, n) + timedelta(days=2) for y in years
                 for m, n in ((1, 1), (7, 4), (11, 11), (12, 25))
                 if date(y, m, n).weekday() == 5}
    sundays = {date(y, 5, 5) for y in years if date(y, 5, 4).weekday() == 6}
    assert set(ri) == elections | saturdays | sundays
    table = holidays_for(packs["US-RI"].holidays, "America/New_York", 2028)
    assert table[date(2028, 11, 7)] == "state legal holiday (RI)"


STATE_NUMBERS = (MIAMI, TULSA, BALTIMORE, DALLAS, HARTFORD, BOSTON, JACKSON, SEATTLE, SALT_LAKE,
                 PROVIDENCE, ALBUQUERQUE, INDIANAPOLIS, ST_LOUIS, NASHVILLE, NEW_ORLEANS,
                 "+18005550123", NYC,
                 "+16125550123", "+12075550123", "+19735550123", "+14045550123", "+13035550123",
                 "+12055550123", "+12155550123", "+15025550123", "+13075550123",
                 "+13135550123", "+17025550123",
                 "+12135550123", "+14145550123", "+15035550123", "+16145550123", "+13165550123",
                 "+16055550123", "+12085550123",
                 "+18045550123", "+16025550123", "+13125550123", "+18035550123",
                 "+17045550123", "+17015550123", "+15015550123")
FEDERAL_ONLY = Policy(tuple(p for p in builtin_packs() if p.overlays is None), US.campaigns,
                      US.default_region)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31),
                    timezones=st.just(UTC)),
       st.sampled_from(STATE_NUMBERS))
def test_state_layers_never_turn_block_into_allow(now: datetime, e164: str) -> None:
    """A state layer only adds rules: a call the federal pack blocks stays blocked, and a
    call allowed is inside every applying layer's windows and off its holidays."""
    f = _us_facts(now, e164)
    with_layers = decide(attempt(e164), f, US, now)  # type: ignore[arg-type]
    federal = decide(attempt(e164), f, FEDERAL_ONLY, now)  # type: ignore[arg-type]
    if federal.verdict is Verdict.BLOCK:
        assert with_layers.verdict is Verdict.BLOCK
    if with_layers.verdict is Verdict.ALLOW:
        for layer in US.layers_for("US", us_states(e164), now):
            assert all(check_zone(layer, z, now).legal for z in with_layers.zones), layer.id


# --- Minnesota, Maine, New Jersey, New York, Georgia, Colorado; Louisiana's hours ---------

MINNEAPOLIS, PORTLAND_ME, NEWARK = "+16125550123", "+12075550123", "+19735550123"
ATLANTA, DENVER = "+14045550123", "+13035550123"
SATURDAY = "2026-12-05"
# NANPA's area codes of each state, as phonenumbers' geocoding data has them (the data the
# gateway reads): every one must select its state, and the data must name no other
AREA_CODES = {
    "MN": ("218", "320", "507", "612", "651", "763", "952"),
    "ME": ("207",),
    "NJ": ("201", "551", "609", "640", "732", "848", "856", "862", "908", "973"),
    "NY": ("212", "315", "329", "332", "347", "363", "516", "518", "585", "607", "631", "646",
           "680", "716", "718", "838", "845", "914", "917", "929", "934"),
    "GA": ("229", "404", "470", "478", "678", "706", "762", "770", "912", "943"),
    "CO": ("303", "719", "720", "748", "970", "983"),
    "LA": ("225", "318", "337", "504", "985"),
}



@pytest.mark.parametrize(("npa", "layer"), [("624", "US-NY"), ("924", "US-MN"),
                                            ("457", "US-LA")])
def test_an_overlay_area_code_the_data_lacks_gets_every_layer(npa: str, layer: str) -> None:
    """Overlays newer than the geocoding data (624 over 716, 924 over 507, 457 over 318 [U]):
    the number's state cannot be told, so every state layer applies, its own among them."""
    assert us_states(f"+1{npa}2000123") == (ANY_STATE,)
    now = local(TUESDAY, "12:00:00", -5)
    assert layer in {p.id for p in US.layers_for("US", (ANY_STATE,), now)}


def test_la_rs_45_811_eight_to_eight_monday_to_saturday_never_sunday() -> None:
    """La. R.S. 45:811(2)-(3): calls by ADAD equipment or a live operator only "between the
    hours of 8:00 a.m. and 8:00 p.m., Monday through Saturday" (20:00:00 refused, the safe
    end), never on a Sunday; New Orleans is UTC-6 in December."""
    assert _reason(NEW_ORLEANS, local(TUESDAY, "07:59:59", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(NEW_ORLEANS, local(TUESDAY, "08:00:00", -6)) is Reason.OK
    assert _reason(NEW_ORLEANS, local(TUESDAY, "19:59:59", -6)) is Reason.OK
    late = local(TUESDAY, "20:00:00", -6)
    assert _reason(NEW_ORLEANS, late) is Reason.OUTSIDE_HOURS
    assert any("outside the Tue windows (08:00-20:00)" in line
               for line in _layer_lines(NEW_ORLEANS, late, "US-LA"))
    assert _reason(NEW_ORLEANS, local(SATURDAY, "12:00:00", -6)) is Reason.OK
    sunday = local(SUNDAY, "12:00:00", -6)
    assert _reason(NEW_ORLEANS, sunday) is Reason.OUTSIDE_HOURS
    assert any("outside the Sun windows (none)" in line
               for line in _layer_lines(NEW_ORLEANS, sunday, "US-LA"))
    assert _reason(WASHINGTON_DC, local(SUNDAY, "20:30:00", -5)) is Reason.OK  # federal only
    # Sunday noon: the next instant open in every layer is Monday 08:00
    assert _decision(NEW_ORLEANS, sunday).retry_after_s == 20 * 3600


@pytest.mark.parametrize(("day", "name"), [
    ("2027-02-09", "Mardi Gras"),
    ("2027-03-26", "Good Friday"),
    ("2026-12-25", "Christmas Day"),
    ("2027-01-08", "state legal holiday (LA)"),  # Battle of New Orleans (La. R.S. 1:55)
    ("2027-08-30", "state legal holiday (LA)"),  # Huey P. Long Day
    ("2027-11-01", "state legal holiday (LA)"),  # All Saints' Day
    ("2027-10-11", "state legal holiday (LA)"),  # Christopher Columbus Day
    ("2028-11-07", "Election Day"),  # general election day, even years [U]
])
def test_la_rs_45_811_3_no_call_on_a_louisiana_state_holiday(day: str, name: str) -> None:
    """§ 45:811(3): never "on days declared to be a state holiday" (La. R.S. 1:55; the days
    the library lacks blocked too, the stricter reading); the same day is callable in
    Washington, D.C."""
    d = _decision(NEW_ORLEANS, local(day, "12:00:00", -6))
    assert d.reason is Reason.HOLIDAY
    assert any(line.startswith("[US-LA]") and name in line for line in d.trace), d.trace
    assert _reason(WASHINGTON_DC, local(day, "12:00:00", -5)) is Reason.OK


def test_la_rs_1_55_extra_days_are_the_stated_rules_for_2026_to_2035() -> None:
    """Christopher Columbus Day (the second Monday of October) typed into US-LA for 2026-2035;
    Robert E. Lee Day and Confederate Memorial Day, struck from § 1:55 in 2022, not blocked."""
    packs = {p.id: p for p in builtin_packs()}
    la = dict(packs["US-LA"].holidays.extra_days)["LA"]
    years = range(2026, 2036)
    expected = {date(y, 10, 8 + (7 - date(y, 10, 1).weekday()) % 7) for y in years}
    assert set(la) == expected
    assert dict(packs["US-LA"].holidays.extra_dates)["LA"] == ((1, 8), (8, 30), (11, 1))
    assert _reason(NEW_ORLEANS, local("2027-01-19", "12:00:00", -6)) is Reason.OK


def test_la_rs_45_844_14_the_listing_not_the_national_dnc_lifted_by_consent() -> None:
    """The Louisiana layer blocks on its own listing (not lifted); a National DNC entry that
    US-FEDERAL lifts (written consent) is not blocked again by the layer."""
    now = local(TUESDAY, "12:00:00", -6)
    assert _reason(NEW_ORLEANS, now, oppositions=(OppositionEntry("ndnc"),)) is Reason.OK
    d = decide(attempt(NEW_ORLEANS),
               _us_facts(now, NEW_ORLEANS, oppositions=(OppositionEntry("la_dnc"),)),  # type: ignore[arg-type]
               US, now)
    assert d.reason is Reason.OPPOSITION
    assert "[US-LA] opposition: the number is on list(s) la_dnc" in d.trace


@pytest.mark.parametrize(("e164", "layer", "offset"), [
    (NYC, "US-NY", -5), (NEWARK, "US-NJ", -5), (ATLANTA, "US-GA", -5)])
def test_ny_gbl_399_z_2_njsa_56_8_128_d_ocga_46_5_187_eight_am_to_nine_pm(
        e164: str, layer: str, offset: int) -> None:
    """N.Y. Gen. Bus. Law § 399-z(2) ("at any time other than between 8:00 A.M. and 9:00
    P.M."), N.J.S.A. 56:8-128(d) ("between the hours of 9:00 p.m. and 8:00 a.m."), O.C.G.A.
    § 46-5-187(3) (as New York's): 21:00:00 refused, where the federal rule allows it."""
    assert _reason(e164, local(TUESDAY, "07:59:59", offset)) is Reason.OUTSIDE_HOURS
    assert _reason(e164, local(TUESDAY, "08:00:00", offset)) is Reason.OK
    assert _reason(e164, local(TUESDAY, "20:59:59", offset)) is Reason.OK
    nine = local(TUESDAY, "21:00:00", offset)
    assert _reason(e164, nine) is Reason.OUTSIDE_HOURS
    assert any("outside the Tue windows (08:00-21:00)" in line
               for line in _layer_lines(e164, nine, layer))
    assert _reason(e164, local(SUNDAY, "12:00:00", offset)) is Reason.OK
    assert _reason(WASHINGTON_DC, nine) is Reason.OK  # the federal rule alone


def test_ny_gbl_399_z_2_hours_in_force_from_2011_01_13() -> None:
    """The amendment of § 399-z that added subdivision 2's hours is in force from
    2011-01-13: 21:00:00 in New York is refused from then on, allowed (federal) before."""
    assert _reason(NYC, local("2011-01-12", "21:00:00", -5)) is Reason.OK
    assert _reason(NYC, local("2011-01-13", "21:00:00", -5)) is Reason.OUTSIDE_HOURS


def test_ny_gbl_399_z_and_ocga_46_5_27_national_dnc_lifted_by_consent_not_blocked_again() -> None:
    """New York's and Georgia's registries are the national one, whose exemptions (express
    request, business relationship) the layer does not undo: US-FEDERAL's lift stands.
    New Jersey's exemptions are narrower than the federal EBR (N.J.A.C. 13:45D-4.4): its
    layer blocks the entry."""
    now = local(TUESDAY, "12:00:00", -5)
    dnc = (OppositionEntry("ndnc"),)
    assert _reason(NYC, now, oppositions=dnc) is Reason.OK
    assert _reason(ATLANTA, now, oppositions=dnc) is Reason.OK
    d = decide(attempt(NEWARK), _us_facts(now, NEWARK, oppositions=dnc), US, now)  # type: ignore[arg-type]
    assert d.reason is Reason.OPPOSITION
    assert "[US-NJ] opposition: the number is on list(s) ndnc" in d.trace


def test_minn_stat_325e_26_31_nine_am_to_nine_pm() -> None:
    """Minn. Stat. §§ 325E.26-.31: no device call between 9 p.m. and 9 a.m., applied to every
    campaign (the stricter reading); Minneapolis is UTC-6 in December."""
    assert us_states(MINNEAPOLIS) == ("MN",)
    assert _reason(MINNEAPOLIS, local(TUESDAY, "08:59:59", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(MINNEAPOLIS, local(TUESDAY, "09:00:00", -6)) is Reason.OK
    assert _reason(MINNEAPOLIS, local(SUNDAY, "20:59:59", -6)) is Reason.OK
    nine = local(TUESDAY, "21:00:00", -6)
    assert _reason(MINNEAPOLIS, nine) is Reason.OUTSIDE_HOURS
    assert any("outside the Tue windows (09:00-21:00)" in line
               for line in _layer_lines(MINNEAPOLIS, nine, "US-MN"))
    assert _reason(WASHINGTON_DC, local(TUESDAY, "08:30:00", -5)) is Reason.OK


def test_10_mrs_1498_3_maine_weekdays_nine_to_five() -> None:
    """10 M.R.S. § 1498(3): "weekdays between 9 a.m. and 5 p.m." (17:00:00 refused), applied
    to every campaign (the stricter reading): no Saturday, no Sunday; Portland is UTC-5."""
    assert us_states(PORTLAND_ME) == ("ME",)
    assert _reason(PORTLAND_ME, local(TUESDAY, "08:59:59", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(PORTLAND_ME, local(TUESDAY, "09:00:00", -5)) is Reason.OK
    assert _reason(PORTLAND_ME, local(TUESDAY, "16:59:59", -5)) is Reason.OK
    five = local(TUESDAY, "17:00:00", -5)
    assert _reason(PORTLAND_ME, five) is Reason.OUTSIDE_HOURS
    assert any("outside the Tue windows (09:00-17:00)" in line
               for line in _layer_lines(PORTLAND_ME, five, "US-ME"))
    saturday = local(SATURDAY, "12:00:00", -5)
    assert _reason(PORTLAND_ME, saturday) is Reason.OUTSIDE_HOURS
    assert any("outside the Sat windows (none)" in line
               for line in _layer_lines(PORTLAND_ME, saturday, "US-ME"))
    assert _reason(PORTLAND_ME, local(SUNDAY, "12:00:00", -5)) is Reason.OUTSIDE_HOURS
    assert _decision(PORTLAND_ME, saturday).retry_after_s == 45 * 3600  # Monday 09:00
    assert _reason(WASHINGTON_DC, saturday) is Reason.OK


def test_10_mrs_1498_3_one_call_in_each_8_hour_period() -> None:
    """§ 1498(3): not more than one solicitation call to a number in each 8-hour period
    (every attempt counts, the stricter reading): a second call 7 h 59 min later is refused
    and frees at 8 h; Washington, D.C. has no such cap."""
    now = local(TUESDAY, "16:00:00", -5)
    earlier = (now - timedelta(hours=7, minutes=59),)
    d = decide(attempt(PORTLAND_ME), _us_facts(now, PORTLAND_ME, attempts=earlier), US, now)  # type: ignore[arg-type]
    assert d.reason is Reason.FREQUENCY_CAP
    assert (d.attempts_limit, d.attempt_window_s) == (1, 8 * 3600)
    assert "[US-ME] frequency: 1 earlier attempt(s) by acme in 0 day(s), limit 1" in d.trace
    assert d.retry_after_s == 60
    assert _reason(PORTLAND_ME, now, attempts=(now - timedelta(hours=8),)) is Reason.OK
    assert _reason(WASHINGTON_DC, now, attempts=earlier) is Reason.OK


def test_crs_6_1_904_colorado_no_call_list() -> None:
    """C.R.S. § 6-1-904(1)(a), (4): the Colorado no-call list, updated each calendar quarter,
    imported and no older than 92 days, and a number on it is not called; no hours of its
    own (21:00:00 allowed: the federal rule); a National DNC entry lifted by consent under
    US-FEDERAL is not blocked again. Denver is UTC-7 in December."""
    now = local(TUESDAY, "12:00:00", -7)
    assert _reason(DENVER, now) is Reason.OK
    only_ndnc = facts(now, DENVER, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    d = decide(attempt(DENVER), only_ndnc, US, now)
    assert d.reason is Reason.LIST_STALE
    assert "[US-CO] lists: required list opposition:co_dnc was never imported" in d.trace
    name = "opposition:co_dnc"
    assert _with_list_age(DENVER, now, name, timedelta(days=91)) is Reason.OK
    assert _with_list_age(DENVER, now, name, timedelta(days=92, seconds=1)) is Reason.LIST_STALE
    assert _reason(DENVER, now, oppositions=(OppositionEntry("co_dnc"),)) is Reason.OPPOSITION
    assert _reason(DENVER, now, oppositions=(OppositionEntry("ndnc"),)) is Reason.OK
    assert _reason(DENVER, local(TUESDAY, "21:00:00", -7)) is Reason.OK


# Alabama, Pennsylvania, Kentucky, Wyoming, Michigan, Nevada ------------------------------

BIRMINGHAM, PHILADELPHIA, LOUISVILLE = "+12055550123", "+12155550123", "+15025550123"
CHEYENNE, DETROIT, LAS_VEGAS = "+13075550123", "+13135550123", "+17025550123"
# NANPA's area codes in service, as phonenumbers' geocoding data places them
AREA_CODES_AL_TO_NV = {
    "AL": ("205", "251", "256", "334", "659", "938"),
    "PA": ("215", "223", "267", "272", "412", "445", "484", "570", "582", "610", "717", "724",
           "814", "835", "878"),
    "KY": ("270", "364", "502", "606", "859"),
    "WY": ("307",),
    "MI": ("231", "248", "269", "313", "517", "586", "616", "734", "810", "906", "947", "989"),
    "NV": ("702", "725", "775"),
}


def test_ala_admin_code_770_x_5_17_1_b_eight_to_eight_never_on_sunday() -> None:
    """Ala. Admin. Code r. 770-X-5-.17(1)(b): "No solicitation calls are allowed on Sundays
    ... none will be placed prior to 8 a.m. or after 8 p.m." (20:00:00 is not after 8 p.m.);
    applied to every campaign (the stricter reading); Birmingham is UTC-6 in December."""
    assert _reason(BIRMINGHAM, local(TUESDAY, "07:59:59", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(BIRMINGHAM, local(TUESDAY, "08:00:00", -6)) is Reason.OK
    assert _reason(BIRMINGHAM, local(TUESDAY, "20:00:00", -6)) is Reason.OK
    late = local(TUESDAY, "20:00:01", -6)
    assert _reason(BIRMINGHAM, late) is Reason.OUTSIDE_HOURS
    assert any("outside" in line for line in _layer_lines(BIRMINGHAM, late, "US-AL"))
    assert _reason(BIRMINGHAM, local(SATURDAY, "12:00:00", -6)) is Reason.OK
    sunday = _decision(BIRMINGHAM, local(SUNDAY, "12:00:00", -6))
    assert sunday.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-AL] windows:") for line in sunday.trace), sunday.trace
    assert sunday.retry_after_s == 20 * 3600  # Monday 08:00
    assert _reason(NYC, local(SUNDAY, "12:00:00", -5)) is Reason.OK  # federal rule only


@pytest.mark.parametrize(("day", "name"), [
    ("2027-04-26", "Confederate Memorial Day"),  # Ala. Code § 1-3-8, fourth Monday of April
    ("2027-06-07", "Jefferson Davis Birthday"),  # first Monday of June
    ("2027-12-24", "Christmas Day (observed)"),  # 25 December 2027 is a Saturday
    ("2027-02-09", "state legal holiday (AL)"),  # Mardi Gras (Mobile, Baldwin) [U]: statewide
])
def test_ala_admin_code_770_x_5_17_1_b_no_solicitation_call_on_a_holiday(
        day: str, name: str) -> None:
    """r. 770-X-5-.17(1)(b): "no solicitation calls are allowed on ... holidays": Alabama's
    legal holidays (Ala. Code § 1-3-8, the library's US/AL table, Mardi Gras added) and the
    federal ones block an Alabama callee; the same day is callable in New York."""
    d = _decision(BIRMINGHAM, local(day, "12:00:00", -6))
    assert d.reason is Reason.HOLIDAY
    assert any(line.startswith("[US-AL]") and name in line for line in d.trace), d.trace
    assert _reason(NYC, local(day, "12:00:00", -5)) is Reason.OK


@pytest.mark.parametrize(("e164", "source", "max_age_days", "statute"), [
    (PHILADELPHIA, "pa_dnc", 92, "73 P.S. § 2245.2(a)"),
    (CHEYENNE, "wy_tps", 60, "Wyo. Stat. § 40-12-302"),
])
def test_73_ps_2245_2_wyo_stat_40_12_302_state_do_not_call_lists(
        e164: str, source: str, max_age_days: int, statute: str) -> None:
    """Pennsylvania's quarterly do-not-call list (73 P.S. § 2245.2(a)) and, in Wyoming, the
    DMA Telephone Preference Service list (a number enrolled more than 60 days must not be
    called, § 40-12-302): imported, fresh, and a number on it is not called."""
    offset = {PHILADELPHIA: -5, CHEYENNE: -7}[e164]
    now = local(TUESDAY, "12:00:00", offset)
    layer = f"US-{us_states(e164)[0]}"
    assert _reason(e164, now) is Reason.OK, statute
    only_ndnc = facts(now, e164, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    d = decide(attempt(e164), only_ndnc, US, now)
    assert d.reason is Reason.LIST_STALE
    assert f"[{layer}] lists: required list opposition:{source} was never imported" in d.trace
    name = f"opposition:{source}"
    assert _with_list_age(e164, now, name, timedelta(days=max_age_days - 1)) is Reason.OK
    assert _with_list_age(e164, now, name, timedelta(days=max_age_days, seconds=1)) \
        is Reason.LIST_STALE
    assert _reason(e164, now, oppositions=(OppositionEntry(source),)) is Reason.OPPOSITION
    assert _reason(NYC, local(TUESDAY, "12:00:00", -5)) is Reason.OK


def test_73_ps_2245_a_1_no_telemarketing_after_9_pm_or_before_8_am() -> None:
    """73 P.S. § 2245(a)(1): no telemarketing "after 9 p.m. or before 8 a.m." (21:00:00 is
    not after 9 p.m.), Sunday included; Philadelphia is UTC-5 in December."""
    assert _reason(PHILADELPHIA, local(TUESDAY, "07:59:59", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(PHILADELPHIA, local(TUESDAY, "08:00:00", -5)) is Reason.OK
    assert _reason(PHILADELPHIA, local(TUESDAY, "21:00:00", -5)) is Reason.OK
    late = local(TUESDAY, "21:00:01", -5)
    assert _reason(PHILADELPHIA, late) is Reason.OUTSIDE_HOURS
    assert any("outside" in line for line in _layer_lines(PHILADELPHIA, late, "US-PA"))
    assert _reason(PHILADELPHIA, local(SUNDAY, "20:00:00", -5)) is Reason.OK


def test_44_ps_11_saturday_after_noon_is_a_half_holiday() -> None:
    """44 P.S. § 11 makes every Saturday "after twelve o'clock noon" a half holiday; Act 73
    of 2019 bans telephone solicitation calls on a legal holiday. Read safely [U]: Saturday
    calls 08:00-12:00 only (noon itself refused), next window Sunday 08:00."""
    assert _reason(PHILADELPHIA, local(SATURDAY, "11:59:59", -5)) is Reason.OK
    noon = _decision(PHILADELPHIA, local(SATURDAY, "12:00:00", -5))
    assert noon.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-PA]") and "Sat windows (08:00-12:00)" in line
               for line in noon.trace), noon.trace
    assert noon.retry_after_s == 20 * 3600  # Sunday 08:00
    assert _reason(NYC, local(SATURDAY, "12:00:00", -5)) is Reason.OK


@pytest.mark.parametrize(("day", "offset", "name"), [
    ("2027-06-14", -4, "state legal holiday (PA)"),  # Flag Day (extra_dates)
    ("2027-03-26", -4, "state legal holiday (PA)"),  # Good Friday
    ("2027-11-02", -5, "state legal holiday (PA)"),  # Election Day [U: every year]
    ("2026-06-15", -4, "state legal holiday (PA)"),  # Flag Day 2026 was a Sunday
    ("2027-11-25", -5, "Thanksgiving"),
    ("2027-01-18", -5, "Martin Luther King"),
])
def test_73_ps_2245_a_act_73_of_2019_no_telephone_solicitation_on_a_legal_holiday(
        day: str, offset: int, name: str) -> None:
    """Act 73 of 2019 (in force 2019-12-03): no telephone solicitation call on a legal
    holiday of 44 P.S. § 11 (the library's US/PA table, Flag Day, Good Friday, Election Day);
    the same day is callable in New York."""
    d = _decision(PHILADELPHIA, local(day, "12:00:00", offset))
    assert d.reason is Reason.HOLIDAY
    assert any(line.startswith("[US-PA]") and name in line for line in d.trace), d.trace
    assert _reason(NYC, local(day, "12:00:00", offset)) is Reason.OK


def test_act_73_of_2019_pennsylvania_layer_in_force_from_2019_12_03() -> None:
    """Before Act 73 took effect (2019-12-03) the layer does not apply: Christmas 2018 at
    noon and a Pennsylvania number off the state list's freshness are the federal pack's."""
    assert [p.id for p in US.layers_for("US", ("PA",), local("2019-12-03", "00:00:00", -5))] \
        == ["US-PA"]
    assert US.layers_for("US", ("PA",), local("2019-12-02", "23:59:59", -5)) == ()
    assert _reason(PHILADELPHIA, local("2018-12-25", "12:00:00", -5)) is Reason.OK


def test_krs_367_46955_no_telephone_solicitation_before_10_am_or_after_9_pm() -> None:
    """KRS 367.46955 [U: item and wording]: telephone solicitations 10 a.m. to 9 p.m. in the
    called person's time (21:00:00 refused: the safe end); Louisville is UTC-5 in December.
    The federal 08:00 start is not enough there."""
    assert us_states(LOUISVILLE) == ("KY",)
    early = _decision(LOUISVILLE, local(TUESDAY, "09:59:59", -5))
    assert early.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-KY] windows:") for line in early.trace), early.trace
    assert early.retry_after_s == 1  # 10:00:00
    assert _reason(LOUISVILLE, local(TUESDAY, "10:00:00", -5)) is Reason.OK
    assert _reason(LOUISVILLE, local(SUNDAY, "20:59:59", -5)) is Reason.OK
    assert _reason(LOUISVILLE, local(TUESDAY, "21:00:00", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(NYC, local(TUESDAY, "09:00:00", -5)) is Reason.OK  # federal rule only


def test_wyo_stat_40_12_302_no_state_hours_the_federal_ones_apply() -> None:
    """Wyoming has no calling hours of its own (§§ 40-12-301 to -305 [U]): US-FEDERAL's
    08:00-21:00 apply (21:00:00 allowed); Cheyenne is UTC-7 in December."""
    assert _reason(CHEYENNE, local(TUESDAY, "07:59:59", -7)) is Reason.OUTSIDE_HOURS
    assert _reason(CHEYENNE, local(SUNDAY, "08:00:00", -7)) is Reason.OK
    assert _reason(CHEYENNE, local(TUESDAY, "21:00:00", -7)) is Reason.OK
    assert _reason(CHEYENNE, local(TUESDAY, "21:00:01", -7)) is Reason.OUTSIDE_HOURS


def test_michigan_nine_am_to_nine_pm_mcl_445_111c_unconfirmed() -> None:
    """Michigan [U: compliance charts give 9 a.m. to 9 p.m.; the text (MCL 445.111c(1)?) was
    not seen]: applied, 21:00:00 refused (the safe end); Detroit is UTC-5 in December."""
    assert us_states(DETROIT) == ("MI",)
    early = _decision(DETROIT, local(TUESDAY, "08:59:59", -5))
    assert early.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-MI] windows:") for line in early.trace), early.trace
    assert _reason(DETROIT, local(TUESDAY, "09:00:00", -5)) is Reason.OK
    assert _reason(DETROIT, local(SUNDAY, "20:59:59", -5)) is Reason.OK
    assert _reason(DETROIT, local(TUESDAY, "21:00:00", -5)) is Reason.OUTSIDE_HOURS


def test_nrs_598_0918_3_no_solicitation_at_a_residence_read_as_nine_am_to_eight_pm() -> None:
    """NRS 598.0918(3): no solicitation by telephone at a residence "between 9 p.m. and
    8 a.m." (2001 text); compliance charts give 9 a.m. to 8 p.m. [U]: the stricter of the
    two, 09:00-20:00, 20:00:00 refused; Las Vegas is UTC-8 in December."""
    assert us_states(LAS_VEGAS) == ("NV",)
    assert _reason(LAS_VEGAS, local(TUESDAY, "08:59:59", -8)) is Reason.OUTSIDE_HOURS
    assert _reason(LAS_VEGAS, local(TUESDAY, "09:00:00", -8)) is Reason.OK
    assert _reason(LAS_VEGAS, local(SUNDAY, "19:59:59", -8)) is Reason.OK
    late = _decision(LAS_VEGAS, local(TUESDAY, "20:00:00", -8))
    assert late.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-NV] windows:") for line in late.trace), late.trace
    assert late.retry_after_s == 13 * 3600  # Wednesday 09:00


def test_ala_code_1_3_8_and_44_ps_11_extra_days_are_the_stated_rules_for_2026_to_2035() -> None:
    """The dates typed into US-AL and US-PA are what the rules give, year by year: Mardi Gras
    (47 days before Easter), Good Friday, Election Day (the Tuesday after the first Monday of
    November, every year) and the Monday after Flag Day on a Sunday."""
    packs = {p.id: p for p in builtin_packs()}
    years = range(2026, 2036)
    al = dict(packs["US-AL"].holidays.extra_days)["AL"]
    assert set(al) == {easter(y) - timedelta(days=47) for y in years}
    pa = dict(packs["US-PA"].holidays.extra_days)["PA"]
    good_fridays = {easter(y) - timedelta(days=2) for y in years}
    elections = {date(y, 11, 2 + (7 - date(y, 11, 1).weekday()) % 7) for y in years}
    flag_mondays = {date(y, 6, 15) for y in years if date(y, 6, 14).weekday() == 6}
    assert set(pa) == good_fridays | elections | flag_mondays
    assert dict(packs["US-PA"].holidays.extra_dates)["PA"] == ((6, 14),)  # Flag Day


def test_ala_code_8_19c_2_alabama_list_merged_into_the_national_registry() -> None:
    """Ala. Code § 8-19C-2's database was merged into the national registry (2003): US-AL
    requires no list of its own; the National DNC (US-FEDERAL's ndnc) blocks an Alabama
    number on it, and a stale national list stops the call."""
    now = local(TUESDAY, "12:00:00", -6)
    assert US.layers_for("US", ("AL",), now)[0].opposition.required_lists == ()
    only_ndnc = facts(now, BIRMINGHAM, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    assert decide(attempt(BIRMINGHAM), only_ndnc, US, now).reason is Reason.OK
    assert _reason(BIRMINGHAM, now, oppositions=(OppositionEntry("ndnc"),)) is Reason.OPPOSITION


# --- the federal lift of the National DNC stands in the state layers -----------------------

OWN_LISTS = [(MIAMI, "fl_dnc"), (INDIANAPOLIS, "in_dnc"), (BOSTON, "ma_dnc"),
             (ST_LOUIS, "mo_dnc"), (JACKSON, "ms_dnc"), (PHILADELPHIA, "pa_dnc"),
             (NASHVILLE, "tn_dnc"), (DALLAS, "tx_dnc"), (CHEYENNE, "wy_tps"),
             (NEW_ORLEANS, "la_dnc"), (DENVER, "co_dnc"),
             (BALTIMORE, None), (TULSA, None), (SEATTLE, None), (PROVIDENCE, None),
             (NYC, None), (ATLANTA, None), (MINNEAPOLIS, None),
             ("+16145550123", None), ("+13165550123", None), ("+16055550123", None),  # OH KS SD
             ("+18045550123", None), ("+17045550123", None),  # Virginia, North Carolina
             ("+16025550123", None)]  # Arizona


@pytest.mark.parametrize(("e164", "own"), OWN_LISTS)
def test_16_cfr_310_4_b_1_iii_b_a_state_layer_does_not_undo_the_national_dnc_lift(
        e164: str, own: str | None) -> None:
    """16 CFR 310.4(b)(1)(iii)(B): signed written consent (or an established business
    relationship) lifts the National DNC in US-FEDERAL. A state layer blocks on the
    state's own list, which its law keeps apart, and does not block the national entry
    again; a state with no list of its own blocks on none."""
    now = local(TUESDAY, "13:00:00", -6)  # inside every state's hours
    assert _reason(e164, now, oppositions=(OppositionEntry("ndnc"),)) is Reason.OK
    assert _reason(e164, now, oppositions=(OppositionEntry("internal"),)) is Reason.OPPOSITION
    if own is not None:
        assert _reason(e164, now, oppositions=(OppositionEntry(own),)) is Reason.OPPOSITION


# --- California, Wisconsin, Oregon, Ohio, Kansas, South Dakota, Idaho ----------------------

LOS_ANGELES, MILWAUKEE, PORTLAND_OR = "+12135550123", "+14145550123", "+15035550123"
COLUMBUS, WICHITA, SIOUX_FALLS, BOISE = ("+16145550123", "+13165550123", "+16055550123",
                                         "+12085550123")
# NANPA's area codes in service, as phonenumbers' geocoding data places them
AREA_CODES_CA_TO_ID = {
    "CA": ("209", "213", "279", "310", "323", "341", "350", "369", "408", "415", "424", "442",
           "510", "530", "559", "562", "619", "626", "628", "650", "657", "661", "669", "707",
           "714", "738", "747", "760", "805", "818", "820", "831", "840", "858", "909", "916",
           "925", "949", "951"),
    "WI": ("262", "274", "353", "414", "534", "608", "715", "920"),
    "OR": ("458", "503", "541", "971"),
    "OH": ("216", "220", "234", "283", "326", "330", "380", "419", "440", "513", "567", "614",
           "740", "937"),
    "KS": ("316", "620", "785", "913"),
    "SD": ("605",),
    "ID": ("208", "986"),
}


def test_cal_pub_util_code_2872_c_no_call_between_9_pm_and_9_am() -> None:
    """Cal. Pub. Util. Code § 2872(c): no automatic dialing-announcing device call "during the
    hours between 9 p.m. and 9 a.m. California time" (21:00:00 refused), applied to every
    campaign (the stricter reading); Los Angeles is UTC-8 in December."""
    assert us_states(LOS_ANGELES) == ("CA",)
    early = _decision(LOS_ANGELES, local(TUESDAY, "08:59:59", -8))
    assert early.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-CA] windows:") for line in early.trace), early.trace
    assert early.retry_after_s == 1  # 09:00:00
    assert _reason(LOS_ANGELES, local(TUESDAY, "09:00:00", -8)) is Reason.OK
    assert _reason(LOS_ANGELES, local(SUNDAY, "20:59:59", -8)) is Reason.OK
    nine = local(TUESDAY, "21:00:00", -8)
    assert _reason(LOS_ANGELES, nine) is Reason.OUTSIDE_HOURS
    assert any("outside the Tue windows (09:00-21:00)" in line
               for line in _layer_lines(LOS_ANGELES, nine, "US-CA"))
    assert _reason(WASHINGTON_DC, local(TUESDAY, "08:30:00", -5)) is Reason.OK  # federal only


def test_atcp_127_wisconsin_no_telephone_solicitation_before_8_am_or_after_9_pm() -> None:
    """Wis. Admin. Code ATCP 127 [S: the Department's page; section and wording U]: no call
    before 8 a.m. or after 9 p.m.; 21:00:00 refused (the safe end), Sunday included;
    Milwaukee is UTC-6 in December."""
    assert us_states(MILWAUKEE) == ("WI",)
    assert _reason(MILWAUKEE, local(TUESDAY, "07:59:59", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(MILWAUKEE, local(TUESDAY, "08:00:00", -6)) is Reason.OK
    assert _reason(MILWAUKEE, local(SUNDAY, "20:59:59", -6)) is Reason.OK
    nine = local(TUESDAY, "21:00:00", -6)
    assert _reason(MILWAUKEE, nine) is Reason.OUTSIDE_HOURS
    assert any("outside the Tue windows (08:00-21:00)" in line
               for line in _layer_lines(MILWAUKEE, nine, "US-WI"))
    assert _reason(NYC, local(TUESDAY, "22:00:00", -5)) is Reason.OUTSIDE_HOURS  # 21:00 CST
    assert _reason(DALLAS, local(TUESDAY, "20:59:59", -6)) is Reason.OK


def test_oregon_hb_3865_eight_am_to_eight_pm_from_2026_01_01() -> None:
    """Oregon HB 3865 (2025), in force 2026-01-01: no telephone solicitation outside 8 a.m. to
    8 p.m. (20:00:00 refused, the safe end); before that date the federal hours alone.
    Portland is UTC-8 in December."""
    assert us_states(PORTLAND_OR) == ("OR",)
    assert _reason(PORTLAND_OR, local(TUESDAY, "07:59:59", -8)) is Reason.OUTSIDE_HOURS
    assert _reason(PORTLAND_OR, local(TUESDAY, "08:00:00", -8)) is Reason.OK
    assert _reason(PORTLAND_OR, local(SUNDAY, "19:59:59", -8)) is Reason.OK
    eight = local(TUESDAY, "20:00:00", -8)
    assert _reason(PORTLAND_OR, eight) is Reason.OUTSIDE_HOURS
    assert any("outside the Tue windows (08:00-20:00)" in line
               for line in _layer_lines(PORTLAND_OR, eight, "US-OR"))
    assert US.layers_for("US", ("OR",), local("2025-12-31", "23:59:59", -8)) == ()
    assert [p.id for p in US.layers_for("US", ("OR",), local("2026-01-01", "00:00:00", -8))] \
        == ["US-OR"]
    assert _reason(PORTLAND_OR, local("2025-12-30", "20:30:00", -8)) is Reason.OK


def test_oregon_hb_3865_no_more_than_three_solicitations_in_24_hours() -> None:
    """HB 3865: no more than three telephone solicitations in a 24-hour period; every attempt
    of the professional counts (the business-relationship calls are not told apart: the
    stricter reading); a fourth call 23 h after the first is refused, Ohio has no cap."""
    now = local(TUESDAY, "16:00:00", -8)
    three = tuple(now - timedelta(hours=h) for h in (1, 2, 23))
    d = decide(attempt(PORTLAND_OR), _us_facts(now, PORTLAND_OR, attempts=three), US, now)  # type: ignore[arg-type]
    assert d.reason is Reason.FREQUENCY_CAP
    assert (d.attempts_limit, d.attempt_window_s) == (3, 86400)
    assert any(line.startswith("[US-OR] frequency:") for line in d.trace), d.trace
    assert _reason(PORTLAND_OR, now, attempts=three[:2]) is Reason.OK
    assert _reason(COLUMBUS, local(TUESDAY, "16:00:00", -5), attempts=three) is Reason.OK


@pytest.mark.parametrize(("e164", "layer", "offset"), [
    (LOS_ANGELES, "US-CA", -8), (MILWAUKEE, "US-WI", -6), (PORTLAND_OR, "US-OR", -8),
    (BOISE, "US-ID", -7)])
def test_cal_17590_atcp_127_82_ors_646_569_idaho_48_1003a_national_list_read_safely(
        e164: str, layer: str, offset: int) -> None:
    """California (Bus. & Prof. Code § 17590(c)), Wisconsin (ATCP 127.80(6r)), Oregon (ORS
    646.569, 646.572(1)(b)) and Idaho (§ 48-1003A(1)(b)) take the national registry as their
    own list, with exemptions narrower than the federal ones (Wisconsin, Oregon) or not seen
    (California, Idaho): the layer blocks a National DNC entry US-FEDERAL lifts by consent
    (the stricter reading); it requires no list of its own."""
    now = local(TUESDAY, "12:00:00", offset)
    assert US.layers_for("US", us_states(e164), now)[0].opposition.required_lists == ()
    only_ndnc = facts(now, e164, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    assert decide(attempt(e164), only_ndnc, US, now).reason is Reason.OK
    d = decide(attempt(e164), _us_facts(now, e164, oppositions=(OppositionEntry("ndnc"),)),  # type: ignore[arg-type]
               US, now)
    assert d.reason is Reason.OPPOSITION
    assert f"[{layer}] opposition: the number is on list(s) ndnc" in d.trace
    assert _reason(NYC, local(TUESDAY, "12:00:00", -5),
                   oppositions=(OppositionEntry("ndnc"),)) is Reason.OK  # lifted by consent


def test_ohio_rev_code_4719_no_hours_nor_list_of_its_own() -> None:
    """Ohio keeps no calling hours nor do-not-call list of its own (ch. 4719, § 109.87; S.B. 28
    of 2003 not enacted [U]): US-OH adds nothing, the federal 08:00-21:00 apply (21:00:00
    allowed) and the National DNC lift by consent stands. Columbus is UTC-5 in December."""
    now = local(TUESDAY, "12:00:00", -5)
    layer = US.layers_for("US", us_states(COLUMBUS), now)
    assert [p.id for p in layer] == ["US-OH"]
    assert layer[0].opposition.blocking_sources == () == layer[0].opposition.required_lists
    assert _reason(COLUMBUS, local(TUESDAY, "07:59:59", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(COLUMBUS, local(SUNDAY, "08:00:00", -5)) is Reason.OK
    assert _reason(COLUMBUS, local(TUESDAY, "21:00:00", -5)) is Reason.OK
    assert _reason(COLUMBUS, local(TUESDAY, "21:00:01", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(COLUMBUS, now, oppositions=(OppositionEntry("ndnc"),)) is Reason.OK


def test_ksa_50_670_no_consumer_telephone_call_before_8_am_or_after_9_pm() -> None:
    """K.S.A. 50-670 [U: subsection and wording from compliance summaries]: 08:00-21:00 in
    the called person's time, 21:00:00 refused (the safe end); Wichita is UTC-6."""
    assert us_states(WICHITA) == ("KS",)
    assert _reason(WICHITA, local(TUESDAY, "07:59:59", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(WICHITA, local(TUESDAY, "08:00:00", -6)) is Reason.OK
    assert _reason(WICHITA, local(SUNDAY, "20:59:59", -6)) is Reason.OK
    nine = local(TUESDAY, "21:00:00", -6)
    assert _reason(WICHITA, nine) is Reason.OUTSIDE_HOURS
    assert any("outside the Tue windows (08:00-21:00)" in line
               for line in _layer_lines(WICHITA, nine, "US-KS"))
    assert _reason(DALLAS, nine) is Reason.OK  # Texas: 21:00:00 allowed


def test_ksa_50_670a_a_no_call_list_consulted_every_30_days() -> None:
    """K.S.A. 50-670a(a): the no-call list (the national one) consulted not less than every
    30 days: a Kansas call needs the National DNC no older than 30 days (US-FEDERAL allows
    31); the layer blocks on no list, so the federal lift by consent stands."""
    now = local(TUESDAY, "12:00:00", -6)
    name = "opposition:ndnc"
    assert _with_list_age(WICHITA, now, name, timedelta(days=29)) is Reason.OK
    assert _with_list_age(WICHITA, now, name, timedelta(days=30)) is Reason.OK
    stale = _with_list_age(WICHITA, now, name, timedelta(days=30, seconds=1))
    assert stale is Reason.LIST_STALE
    lists = tuple(ListInfo(n, 1, now - (timedelta(days=30, seconds=1) if n == name
                                        else timedelta(days=1)), 10) for n in STATE_LISTS)
    d = decide(attempt(WICHITA), facts(now, WICHITA, lists=lists), US, now)
    assert "[US-KS] lists: opposition:ndnc v1 is 30 day(s) old (stale, limit 30)" in d.trace
    assert _with_list_age(DALLAS, now, name, timedelta(days=30, seconds=1)) is Reason.OK
    assert _reason(WICHITA, now, oppositions=(OppositionEntry("ndnc"),)) is Reason.OK


def test_sdcl_37_30_28_weekdays_between_9_am_and_9_pm_in_both_zones() -> None:
    """SDCL 37-30-28: automated telephone solicitations only "weekdays between 9 a.m. and
    9 p.m., according to the time in this state" (21:00:00 refused), applied to every
    campaign (the stricter reading). 605 spans Mountain (UTC-7) and Central (UTC-6) time:
    the call must be inside the hours in both, 09:00 Mountain to 21:00 Central."""
    assert us_states(SIOUX_FALLS) == ("SD",)
    early = _decision(SIOUX_FALLS, local(TUESDAY, "08:59:59", -7))
    assert early.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-SD] windows:") for line in early.trace), early.trace
    assert _reason(SIOUX_FALLS, local(TUESDAY, "09:00:00", -7)) is Reason.OK
    assert _reason(SIOUX_FALLS, local(TUESDAY, "19:59:59", -7)) is Reason.OK
    nine_central = local(TUESDAY, "20:00:00", -7)
    assert _reason(SIOUX_FALLS, nine_central) is Reason.OUTSIDE_HOURS
    assert any("outside the Tue windows (09:00-21:00)" in line
               for line in _layer_lines(SIOUX_FALLS, nine_central, "US-SD"))
    saturday = _decision(SIOUX_FALLS, local(SATURDAY, "12:00:00", -7))
    assert saturday.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-SD]") and "outside the Sat windows (none)" in line
               for line in saturday.trace), saturday.trace
    assert saturday.retry_after_s == 45 * 3600  # Monday 09:00 Mountain
    assert _reason(SIOUX_FALLS, local(SUNDAY, "12:00:00", -7)) is Reason.OUTSIDE_HOURS
    assert _reason(DENVER, local(SATURDAY, "12:00:00", -7)) is Reason.OK


def test_idaho_code_48_1003a_no_hours_of_its_own_the_federal_ones_apply() -> None:
    """Idaho has no calling hours of its own (§§ 48-1003, 48-1003C [U]): US-FEDERAL's
    08:00-21:00 apply in both of 208's zones (Mountain UTC-7, Pacific UTC-8)."""
    assert _reason(BOISE, local(TUESDAY, "07:59:59", -8)) is Reason.OUTSIDE_HOURS
    assert _reason(BOISE, local(SUNDAY, "09:00:00", -7)) is Reason.OK  # 08:00 Pacific
    assert _reason(BOISE, local(TUESDAY, "21:00:00", -7)) is Reason.OK  # 20:00 Pacific
    assert _reason(BOISE, local(TUESDAY, "21:00:01", -7)) is Reason.OUTSIDE_HOURS


# Virginia, Arizona, Illinois, South Carolina, North Carolina, North Dakota, Arkansas ------

RICHMOND, PHOENIX, CHICAGO, COLUMBIA_SC = ("+18045550123", "+16025550123", "+13125550123",
                                           "+18035550123")
CHARLOTTE, FARGO, LITTLE_ROCK = "+17045550123", "+17015550123", "+15015550123"
# NANPA's area codes in service, as phonenumbers' geocoding data places them
AREA_CODES_VA_TO_AR = {
    "VA": ("276", "434", "540", "571", "686", "703", "757", "804", "826", "948"),
    "AZ": ("480", "520", "602", "623", "928"),
    "IL": ("217", "224", "309", "312", "331", "447", "464", "618", "630", "708", "730", "773",
           "779", "815", "847", "872"),
    "SC": ("803", "821", "839", "843", "854", "864"),
    "NC": ("252", "336", "472", "704", "743", "828", "910", "919", "980", "984"),
    "ND": ("701",),
    "AR": ("327", "479", "501", "870"),
}


@pytest.mark.parametrize(("e164", "offset", "layer"), [
    (RICHMOND, -5, "US-VA"),  # Va. Code § 59.1-511: "between 8:00 a.m. and 9:00 p.m." [P]
])
def test_va_code_59_1_511_eight_am_to_nine_pm_the_end_refused(
        e164: str, offset: int, layer: str) -> None:
    """Va. Code § 59.1-511 ("at any time other than between 8:00 a.m. and 9:00 p.m."):
    08:00-21:00 callee time, 21:00:00 refused (US-FEDERAL alone allows it), every day;
    Richmond is UTC-5 in December."""
    assert _reason(e164, local(TUESDAY, "07:59:59", offset)) is Reason.OUTSIDE_HOURS
    assert _reason(e164, local(TUESDAY, "08:00:00", offset)) is Reason.OK
    assert _reason(e164, local(SUNDAY, "20:59:59", offset)) is Reason.OK
    nine = _decision(e164, local(TUESDAY, "21:00:00", offset))
    assert nine.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith(f"[{layer}] windows:") and "(08:00-21:00)" in line
               for line in nine.trace), nine.trace
    assert nine.retry_after_s == 11 * 3600  # Wednesday 08:00
    assert _reason(WASHINGTON_DC, local(TUESDAY, "21:00:00", -5)) is Reason.OK  # federal only


def test_ndcc_51_28_eight_am_to_nine_pm_in_both_of_north_dakotas_zones() -> None:
    """N.D.C.C. § 51-28-05, 8 a.m.-9 p.m. (the Attorney General's pages [S]; wording not seen [U]):
    21:00:00 refused. Area code 701 spans Central and Mountain time, so a Fargo number is
    called only when open in both zones: from 08:00 Mountain (09:00 Central) to 21:00
    Central (20:00 Mountain)."""
    assert us_states(FARGO) == ("ND",)
    assert _reason(FARGO, local(TUESDAY, "07:59:59", -7)) is Reason.OUTSIDE_HOURS
    assert _reason(FARGO, local(TUESDAY, "08:00:00", -7)) is Reason.OK
    assert _reason(FARGO, local(SUNDAY, "20:59:59", -6)) is Reason.OK
    nine = _decision(FARGO, local(TUESDAY, "21:00:00", -6))
    assert nine.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-ND] windows:") and "(08:00-21:00)" in line
               for line in nine.trace), nine.trace
    assert _reason(WASHINGTON_DC, local(TUESDAY, "21:00:00", -5)) is Reason.OK  # federal only


def test_ars_arizona_keeps_no_daylight_saving_time() -> None:
    """Phoenix is UTC-7 all year (America/Phoenix): on a July evening 21:00:00 there is
    allowed and one second later refused (the federal hours), at the same UTC offset as in
    December; the same instant in Denver (UTC-6 in July) is 22:00."""
    assert _reason(PHOENIX, local("2026-07-07", "21:00:00", -7)) is Reason.OK
    assert _reason(PHOENIX, local("2026-07-07", "21:00:01", -7)) is Reason.OUTSIDE_HOURS
    assert _reason(PHOENIX, local("2026-07-07", "07:59:59", -7)) is Reason.OUTSIDE_HOURS
    assert _reason("+13035550123", local("2026-07-07", "21:00:00", -7)) is Reason.OUTSIDE_HOURS


def test_815_ilcs_305_15_a_nine_am_to_nine_pm_applied_to_every_campaign() -> None:
    """815 ILCS 413/15(a) (no live call "between 9 p.m. and 8 a.m.") and the Automatic
    Telephone Dialers Act's 9 p.m.-9 a.m. ban (815 ILCS 305/15(a) [P/S]), applied to every
    campaign (the stricter reading): 09:00-21:00, 21:00:00 refused; Chicago is UTC-6 in
    December."""
    assert us_states(CHICAGO) == ("IL",)
    early = _decision(CHICAGO, local(TUESDAY, "08:59:59", -6))
    assert early.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-IL] windows:") and "(09:00-21:00)" in line
               for line in early.trace), early.trace
    assert early.retry_after_s == 1  # 09:00:00
    assert _reason(CHICAGO, local(TUESDAY, "09:00:00", -6)) is Reason.OK
    assert _reason(CHICAGO, local(SUNDAY, "20:59:59", -6)) is Reason.OK
    assert _reason(CHICAGO, local(TUESDAY, "21:00:00", -6)) is Reason.OUTSIDE_HOURS
    assert _reason(NYC, local(TUESDAY, "08:30:00", -5)) is Reason.OK  # federal rule only


def test_sc_code_16_17_446_c_3_no_call_after_seven_pm_or_before_eight_am() -> None:
    """S.C. Code § 16-17-446(C)(3): ADAD calls "prohibited after seven p.m. or before eight
    a.m." [P], applied to every campaign (the stricter reading; the Telephone Privacy
    Protection Act's 8 a.m.-9 p.m. lie around it): 19:00:00 allowed, one second later
    refused; Columbia is UTC-5 in December."""
    assert us_states(COLUMBIA_SC) == ("SC",)
    assert _reason(COLUMBIA_SC, local(TUESDAY, "07:59:59", -5)) is Reason.OUTSIDE_HOURS
    assert _reason(COLUMBIA_SC, local(TUESDAY, "08:00:00", -5)) is Reason.OK
    assert _reason(COLUMBIA_SC, local(SUNDAY, "19:00:00", -5)) is Reason.OK
    late = _decision(COLUMBIA_SC, local(TUESDAY, "19:00:01", -5))
    assert late.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-SC] windows:") and "(08:00-19:00:01)" in line
               for line in late.trace), late.trace
    assert _reason(NYC, local(TUESDAY, "19:30:00", -5)) is Reason.OK  # federal rule only


def test_sc_code_37_21_south_carolina_layer_in_force_from_2018_05_18() -> None:
    """The South Carolina Telephone Privacy Protection Act took effect on 2018-05-18: the
    layer applies from then on; before it, 19:30 is the federal pack's (allowed)."""
    assert [p.id for p in US.layers_for("US", ("SC",), local("2018-05-18", "00:00:00", -4))] \
        == ["US-SC"]
    assert US.layers_for("US", ("SC",), local("2018-05-17", "23:59:59", -4)) == ()
    assert _reason(COLUMBIA_SC, local("2018-05-15", "19:30:00", -4)) is Reason.OK
    assert _reason(COLUMBIA_SC, local("2018-05-22", "19:30:00", -4)) is Reason.OUTSIDE_HOURS


@pytest.mark.parametrize(("e164", "offset"), [(CHARLOTTE, -5), (LITTLE_ROCK, -6), (PHOENIX, -7)])
def test_nc_gen_stat_75_102_ark_code_4_99_ars_44_1282_no_state_hours_the_federal_ones_apply(
        e164: str, offset: int) -> None:
    """No calling hours of their own were seen for North Carolina (§§ 75-100 to -105),
    Arkansas (§§ 4-99-401 to -408) nor Arizona (§§ 44-1271 to -1282) [U]: US-FEDERAL's
    08:00-21:00 apply (21:00:00 allowed, one second later refused by US-FEDERAL), Sunday
    included."""
    assert _reason(e164, local(TUESDAY, "07:59:59", offset)) is Reason.OUTSIDE_HOURS
    assert _reason(e164, local(SUNDAY, "08:00:00", offset)) is Reason.OK
    assert _reason(e164, local(TUESDAY, "21:00:00", offset)) is Reason.OK
    late = _decision(e164, local(TUESDAY, "21:00:01", offset))
    assert late.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-FEDERAL]") or line.startswith("windows")
               or "outside" in line for line in late.trace), late.trace
    layer = f"US-{us_states(e164)[0]}"
    assert not any(line.startswith(f"[{layer}] windows:") and "outside" in line
                   for line in late.trace), late.trace


@pytest.mark.parametrize(("e164", "layer"), [
    (CHICAGO, "US-IL"), (COLUMBIA_SC, "US-SC"), (FARGO, "US-ND"), (LITTLE_ROCK, "US-AR")])
def test_sc_code_37_21_20_6_and_unseen_exemptions_block_the_national_dnc_entry(
        e164: str, layer: str) -> None:
    """South Carolina's exemptions do not reach a number on the National DNC (§ 37-21-20(6)
    [S]); Illinois's written consent, North Dakota's and Arkansas's exemptions were not seen
    [U]: their registry is the national one, and the layer blocks an entry US-FEDERAL lifts
    by consent or EBR (the stricter reading). Virginia, North Carolina and Arizona exempt
    what the federal rules do: there the federal lift stands (OWN_LISTS)."""
    now = local(TUESDAY, "12:00:00", -6)  # inside every layer's hours (13:00 in Columbia)
    dnc = (OppositionEntry("ndnc"),)
    d = decide(attempt(e164), _us_facts(now, e164, oppositions=dnc), US, now)  # type: ignore[arg-type]
    assert d.reason is Reason.OPPOSITION
    assert f"[{layer}] opposition: the number is on list(s) ndnc" in d.trace, d.trace
    assert _reason(RICHMOND, now, oppositions=dnc) is Reason.OK
    assert _reason(CHARLOTTE, now, oppositions=dnc) is Reason.OK
    assert _reason(PHOENIX, now, oppositions=dnc) is Reason.OK


def test_va_nc_az_il_sc_nd_ar_keep_no_state_list_of_their_own() -> None:
    """Each of these states' registries is the national one (Va. Code § 59.1-514(B),
    N.C. Gen. Stat. § 75-102(a), S.C. Code § 37-21-70(B), N.D.C.C. § 51-28-09(1), Ark. Code
    § 4-99-404(2)(C), A.R.S. § 44-1282(A), 815 ILCS 402/20(a) [P/S]): the layers require no
    list, so a fresh National DNC alone is enough."""
    now = local(TUESDAY, "12:00:00", -6)
    for state in AREA_CODES_VA_TO_AR:
        assert US.layers_for("US", (state,), now)[0].opposition.required_lists == (), state
    for e164 in (RICHMOND, PHOENIX, CHICAGO, COLUMBIA_SC, CHARLOTTE, FARGO, LITTLE_ROCK):
        only_ndnc = facts(now, e164, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
        assert decide(attempt(e164), only_ndnc, US, now).reason is Reason.OK, e164


# --- every area code of every state with a layer ---------------------------------------

ALL_AREA_CODES = {**AREA_CODES, **AREA_CODES_AL_TO_NV, **AREA_CODES_CA_TO_ID,
                  **AREA_CODES_VA_TO_AR}


@pytest.mark.parametrize("state", sorted(ALL_AREA_CODES))
def test_every_area_code_of_the_state_selects_its_layer(state: str) -> None:
    """Every area code of the state (overlays included) is read as that state, so its layer
    applies, whatever the exchange; an area code the geocoding data names for the state
    but missing from the table would be a gap in it (718 is placed per exchange only)."""
    from phonenumbers.geodata import GEOCODE_DATA

    from gateway.core.nanp import US_STATES

    codes = set(ALL_AREA_CODES[state])
    assert {k[1:] for k, v in GEOCODE_DATA.items()
            if len(k) == 4 and k[0] == "1" and US_STATES.get(v.get("en", "")) == state} <= codes
    assert {k[1:] for k in GEOCODE_DATA if len(k) == 4 and k.startswith("1")
            and state in us_states(f"+{k}2000123")} <= codes
    now = local(TUESDAY, "12:00:00", -5)
    for code in ALL_AREA_CODES[state]:
        for exchange in ("200", "555", "999"):
            number = f"+1{code}{exchange}0123"
            assert us_states(number) == (state,), number
            assert [p.id for p in US.layers_for("US", us_states(number), now)] == [f"US-{state}"]
