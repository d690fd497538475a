"""Every built-in pack cites the texts it encodes in `[pack] sources` (docs/policy.md,
"Every rule and its text"), with a confidence mark on each."""

from __future__ import annotations

import pytest

from gateway.packs import builtin_packs

PACKS = {p.id: p for p in builtin_packs()}
CITED = {
    "FR-2023": ("D.223-9", "L.221-17", "L.3134-13", "old art. L.223-1", "L.223-5",
                "2022-1583", "2020-901"),
    "FR-2026": ("D.223-9", "L.221-17", "loi n° 2025-594", "2026-662", "2022-1583"),
    "UK-PECR": ("PECR 2003 reg. 21", "reg. 21(4)", "72 h", "24 h", "3 %"),
    "US-FEDERAL": ("64.1200(c)(1)", "310.4(b)(1)(iii)(A)", "310.4(b)(4)(i)", "64.1200(f)(5)"),
    "US-FL": ("501.059(8)(a)", "501.059(8)(b)"),
    "US-OK": ("775C",),
    "US-MD": ("14-4501",),
    "US-TX": ("301.051", "304.051"),
    "US-CT": ("42-288a", "23-98"),
    "US-MA": ("201 CMR 12.02", "159C"),
    "US-MS": ("77-3-723",),
    "US-WA": ("19.158.040(2)",),
    "US-UT": ("13-25a-103(3)", "63G-1-301", "13-25a-108"),
    "US-RI": ("5-61-2(2)", "5-61-3.6", "25-1-1"),
    "US-NM": ("57-12-22(B)(5)", "57-12A-4"),
    "US-IN": ("IC 24-4.7-3-1", "IC 24-4.7-4-1", "IC 24-4.7-1-1"),
    "US-MO": ("407.1098", "407.1101", "407.1095"),
    "US-TN": ("1220-04-11-.02(1)", "1220-04-11-.03(4)", "65-4-405"),
    "US-LA": ("45:844.14(A)(2)(b)", "45:811(2)-(3)", "1:55", "45:844.31"),
    "US-MN": ("325E.26-.31", "325E.27(a)", "325E.312", "325E.314(b)"),
    "US-ME": ("1498(3)", "1499-B(4)"),
    "US-NJ": ("56:8-128(d)", "56:8-128(a)", "56:8-127", "13:45D-4.4"),
    "US-NY": ("399-z(2)", "399-z(5-a)"),
    "US-GA": ("46-5-187(3)", "46-5-27"),
    "US-CO": ("6-1-904(1)(a)", "6-1-904(4)", "6-1-905"),
    "US-AL": ("770-X-5-.17(1)(b)", "8-19C-2", "1-3-8"),
    "US-PA": ("2245(a)(1)", "Act 73 of 2019", "44 P.S. § 11", "2245.2(a)"),
    "US-KY": ("KRS 367.46955", "367.46994(1)", "367.461(2)(e)"),
    "US-WY": ("40-12-302", "40-12-303"),
    "US-MI": ("MCL 445.111a", "2002 PA 612", "445.111c(1)"),
    "US-NV": ("NRS 598.0918(3)", "NRS 228.590", "228.540", "597.814(2)(a)"),
    "US-CA": ("Pub. Util. Code § 2872(c)", "§ 2871", "§ 17590(c)", "§ 17592"),
    "US-WI": ("ATCP 127", "100.52(1)(fm)", "127.80(6r)", "127.82(1)", "127.80(2), (10)(c)"),
    "US-OR": ("HB 3865", "646.569(1)", "646.572(1)(b)", "646.569(2)(b)"),
    "US-OH": ("4719.01-4719.18", "109.87", "S.B. 28"),
    "US-KS": ("K.S.A. 50-670", "50-670a(a)", "50-670(a)(3)"),
    "US-SD": ("SDCL 37-30-28", "49-31-1.5"),
    "US-ID": ("48-1003A(1)(b)", "48-1003A(2)", "48-1002(11)(a)", "48-1003C"),
    "US-VA": ("59.1-511", "59.1-514(B)", "59.1-514(D)"),
    "US-AZ": ("44-1282(A)", "13-2919"),
    "US-IL": ("815 ILCS 413/15(a)", "815 ILCS 305/15(a)", "815 ILCS 402/20(a)", "815 ILCS 5/8b"),
    "US-SC": ("37-21-10", "37-21-30", "16-17-446(C)(3)", "37-21-70(B)"),
    "US-NC": ("75-102(a)", "75-103(a)"),
    "US-ND": ("51-28-05", "51-28-09(1)", "51-28-01(4)"),
    "US-AR": ("4-99-404", "5-63-204"),
}


def test_every_builtin_pack_is_covered() -> None:
    assert set(PACKS) == set(CITED)


@pytest.mark.parametrize("pack_id", sorted(CITED))
def test_pack_sources_cite_its_texts_with_a_confidence_mark(pack_id: str) -> None:
    sources = PACKS[pack_id].sources
    text = " ".join(sources)
    for citation in CITED[pack_id]:
        assert citation in text, citation
    for source in sources:
        marked = any(m in source for m in ("[P]", "[S]", "[U]", "[P/S]", "[P,", "[P:", "[S:",
                                           "[U:"))
        assert marked or "setting" in source or "not applied" in source, source
