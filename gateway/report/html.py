"""The report page: one self-contained HTML document (inline CSS and SVG, no script,
no font, no link to anything). Figures carry ``data-figure`` attributes for checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from html import escape

from gateway.audit import VerifyReport
from gateway.report.aggregate import Endpoint, ReportData
from gateway.report.i18n import words
from gateway.report.svg import COLOURS, horizontal_bars, stacked_bars

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2em;
color:#222;max-width:1150px}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;
border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2e7d32;font-weight:bold}.ko{color:#c62828;font-weight:bold}
.meta td{border:none;padding:.1em .8em .1em 0}.warn{background:#fff3e0}
svg.chart{display:block;margin:.5em 0;max-width:100%;height:auto}
@media print{body{margin:0}}
"""


@dataclass(frozen=True, slots=True)
class Meta:
    generated_at: str
    source: str
    abandon_limits: Mapping[str, float]  # campaign -> the pack's max ratio


def _n(value: int | float | None, figure: str | None = None) -> str:
    text = "—" if value is None else (f"{value:,}".replace(",", "\u202f")
                                      if isinstance(value, int) else f"{value:.2%}")
    attr = f' data-figure="{escape(figure)}"' if figure else ""
    raw = "" if value is None else f' data-value="{value}"'
    return f'<td class="n"{attr}{raw}>{text}</td>'


def _table(head: Sequence[str], rows: Sequence[str], table_id: str) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f'<table id="{table_id}"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}' \
           "</tbody></table>"


def _age(seconds: int) -> str:
    try:
        return str(timedelta(seconds=seconds))
    except OverflowError:  # beyond timedelta's range (a record altered by hand)
        return f"{seconds} s"


def _endpoint(label: str, point: Endpoint | None, w: Mapping[str, str], key: str) -> str:
    if point is None:
        return f"<tr><th>{escape(label)}</th><td>{escape(w['none'])}</td></tr>"
    return (f'<tr><th>{escape(label)}</th><td data-figure="{key}_id">{escape(point.id)}</td>'
            f'<td data-figure="{key}_ts">{escape(point.ts)}</td>'
            f"<td>{escape(w['instance'])} {escape(point.instance)} #{point.seq}</td></tr>")


def render(d: ReportData, chain: VerifyReport, meta: Meta, lang: str = "fr") -> str:
    w = words(lang)
    days = sorted(d.per_day)
    allow = sum(c["ALLOW"] for c in d.per_day.values())
    block = sum(c["BLOCK"] for c in d.per_day.values())
    parts = [f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
             '<meta name="viewport" content="width=device-width, initial-scale=1">'
             f"<title>{escape(w['title'])}</title><style>{CSS}</style></head><body>",
             f"<h1>{escape(w['title'])}</h1>",
             '<table class="meta">'
             f"<tr><td>{w['period']}</td><td id=\"period\">{d.start.isoformat()} — "
             f"{d.end.isoformat()}</td></tr>"
             f"<tr><td>{w['campaign']}</td><td>{escape(d.campaign or w['all_campaigns'])}"
             f"</td></tr><tr><td>{w['zone']}</td><td>{escape(d.zone)}</td></tr>"
             f"<tr><td>{w['source']}</td><td>{escape(meta.source)}</td></tr>"
             f"<tr><td>{w['generated']}</td><td>{escape(meta.generated_at)}</td></tr></table>"]

    parts.append(f"<h2 id=\"summary\">{w['summary']}</h2>")
    parts.append(_table([w["decisions"], w["allowed"], w["blocked"], w["distinct_numbers"]], [
        "<tr>" + _n(d.records_in_period, "decisions") + _n(allow, "allow") + _n(block, "block")
        + _n(d.numbers.count(), "distinct_numbers") + "</tr>"], "summary-table"))
    if d.superseding or d.superseded or d.unresolved:
        parts.append(f"<p>{escape(w['supersede_note'])}</p>")
    parts.append(_table([w["superseding"], w["superseded"], w["unresolved"]], [
        "<tr>" + _n(d.superseding, "superseding") + _n(d.superseded, "superseded")
        + _n(d.unresolved, "unresolved").replace(
            'class="n"', 'class="n warn"' if d.unresolved else 'class="n"') + "</tr>"],
        "supersede-table"))

    labels = [day.isoformat() for day in days]
    parts.append(f"<h2 id=\"per-day\">{w['per_day']}</h2>")
    parts.append(stacked_bars("chart-per-day", labels, [
        ("ALLOW", w["allowed"], [d.per_day[x]["ALLOW"] for x in days]),
        ("BLOCK", w["blocked"], [d.per_day[x]["BLOCK"] for x in days]),
    ], title=w["per_day"]))
    rows = [f'<tr data-day="{x.isoformat()}"><td>{x.isoformat()}</td>'
            + _n(d.per_day[x]["ALLOW"], f"day:{x.isoformat()}:ALLOW")
            + _n(d.per_day[x]["BLOCK"], f"day:{x.isoformat()}:BLOCK") + "</tr>"
            for x in days if d.per_day[x]]
    parts.append(_table([w["day"], w["allowed"], w["blocked"]], rows, "per-day-table"))

    reasons = sorted(d.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    parts.append(f"<h2 id=\"reasons\">{w['reasons']}</h2>")
    parts.append(horizontal_bars("chart-reasons", reasons, title=w["reasons"]))
    parts.append(_table([w["reason"], w["count"]], [
        f"<tr><td>{escape(r)}</td>{_n(c, f'reason:{r}')}</tr>" for r, c in reasons],
        "reasons-table"))

    parts.append(f"<h2 id=\"night\">{w['night']}</h2>")
    parts.append(_table([w["night_stopped"], w["night_placed"]], [
        "<tr>" + _n(d.night_stopped, "night_stopped")
        + _n(d.night_placed, "night_placed").replace('class="n"', 'class="n warn"'
                                                        if d.night_placed else 'class="n"')
        + "</tr>"], "night-table"))
    parts.append(stacked_bars("chart-hours", [f"{h:02d}h" for h in range(24)], [
        ("ALLOW", w["allowed"], d.hours_allowed),
        ("BLOCK", w["night_stopped"], d.hours_stopped),
    ], title=w["hour_chart"], height=200))

    parts.append(f"<h2 id=\"attempts\">{w['attempts']}</h2>")
    cap = d.attempts_limit if d.attempts_limit is not None else 10
    ranks = [(f"#{r}", f"rank:{r}", d.attempt_ordinals[r]) for r in range(1, cap + 1)
             if d.attempt_ordinals[r]]
    beyond = sum(c for r, c in d.attempt_ordinals.items() if r > cap)
    if beyond:
        ranks.append((f"> {cap}", "rank:over", beyond))
    parts.append(horizontal_bars("chart-attempts", [(label, c) for label, _, c in ranks],
                                 title=w["attempts"], colour=COLOURS["a"]))
    parts.append(_table([w["attempt_rank"], w["calls_placed"]], [
        f"<tr><td>{escape(label)}</td>{_n(c, key)}</tr>" for label, key, c in ranks],
        "attempts-table"))
    parts.append(_table([w["cap"], w["frequency_blocks"], w["over_cap"]], [
        "<tr>" + _n(d.attempts_limit, "attempts_limit") + _n(d.frequency_blocks,
        "frequency_blocks") + _n(d.over_cap_placed, "over_cap") + "</tr>"], "cap-table"))

    parts.append(f"<h2 id=\"abandon\">{w['abandon']}</h2>")
    rows = []
    for name in sorted(d.campaigns):
        c = d.campaigns[name]
        ratio = f"{c.abandoned}/{c.answered}" if c.answered is not None else "—"
        limit = meta.abandon_limits.get(name)
        over = c.abandon_max_ratio is not None and limit is not None and \
            c.abandon_max_ratio > limit
        rows.append(f'<tr data-campaign="{escape(name)}"><td>{escape(name)}</td>'
                    + _n(c.decisions, f"campaign:{name}:decisions")
                    + f"<td>{ratio}</td>"
                    + _n(c.abandon_max_ratio, f"campaign:{name}:abandon_max").replace(
                        'class="n"', 'class="n warn"' if over else 'class="n"')
                    + _n(limit, f"campaign:{name}:abandon_limit")
                    + _n(c.abandon_blocks, f"campaign:{name}:abandon_blocks") + "</tr>")
    parts.append(_table([w["campaign"], w["decisions"], w["abandoned"], w["ratio_max"],
                         w["limit"], w["abandon_blocks"]], rows, "abandon-table"))

    parts.append(f"<h2 id=\"consent\">{w['consent']}</h2>")
    basis = [("consent", w["basis_consent"]), ("contract", w["basis_contract"]),
             ("none", w["basis_none"])]
    parts.append(_table([w["basis"], w["count"]], [
        f"<tr><td>{escape(label)}</td>{_n(d.basis[key], f'basis:{key}')}</tr>"
        for key, label in basis] + [
        f"<tr><td>{escape(r)}</td>{_n(d.consent_blocks[r], f'reason_engine:{r}')}</tr>"
        for r in ("no_consent", "consent_expired", "consent_revoked")], "basis-table"))
    parts.append(_table([w["list"], w["version"], w["age_max"], w["age_last"]], [
        f"<tr><td>{escape(n)}</td>{_n(f.last_version, f'list:{n}:version')}"
        f'<td data-figure="list:{escape(n)}:age_max" data-value="{f.max_age_s}">'
        f"{_age(f.max_age_s)}</td><td>{_age(f.last_age_s)}</td></tr>"
        for n, f in sorted(d.lists.items())], "lists-table"))
    parts.append(_table([w["list_stale"]], ["<tr>" + _n(d.list_stale, "list_stale") + "</tr>"],
                        "stale-table"))

    parts.append(f"<h2 id=\"shadow\">{w['shadow']}</h2>")
    parts.append(_table([w["shadow_total"], w["shadow_block"], w["fail_open"]], [
        "<tr>" + _n(d.shadow, "shadow") + _n(d.shadow_would_block, "shadow_would_block")
        + _n(d.fail_open, "fail_open") + "</tr>"], "shadow-table"))

    parts.append(f"<h2 id=\"chain\">{w['chain']}</h2>")
    verdict = (f'<p id="chain-result" class="ok" data-ok="true">{w["chain_ok"]}</p>'
               if chain.ok else
               f'<p id="chain-result" class="ko" data-ok="false">{w["chain_ko"]}</p>')
    parts.append(verdict)
    parts.append('<table id="chain-table">'
                 f"<tr><th>{w['records']}</th>{_n(chain.records, 'chain_records')}</tr>"
                 f"<tr><th>{w['problems']}</th>{_n(chain.problems_total, 'chain_problems')}"
                 f"</tr><tr><th>{w['unreadable']}</th>{_n(d.unreadable, 'unreadable')}</tr>"
                 + _endpoint(w["first_record"], d.first, w, "first")
                 + _endpoint(w["last_record"], d.last, w, "last") + "</table>")
    if chain.problems:
        parts.append("<ul>" + "".join(
            f"<li>{escape(p.position)}: {escape(p.kind)} — {escape(p.detail)}</li>"
            for p in chain.problems) + "</ul>")
    if chain.notes:
        parts.append(f"<p>{w['notes']}:</p><ul>"
                     + "".join(f"<li>{escape(n)}</li>" for n in chain.notes) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)
