"""Inline SVG bar charts (no script, no external resource). Every bar carries its
figures in ``data-*`` attributes and a ``<title>`` tooltip."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

COLOURS = {"ALLOW": "#2e7d32", "BLOCK": "#c62828", "a": "#1565c0", "b": "#ef6c00"}


def stacked_bars(chart_id: str, labels: Sequence[str], series: Sequence[tuple[str, str,
                 Sequence[int]]], *, height: int = 220, title: str = "") -> str:
    """Vertical stacked bars: ``series`` = (key, legend, values per label)."""
    n = max(1, len(labels))
    width = max(480, min(1100, 60 + n * 24))
    top = max([sum(s[2][i] for s in series) for i in range(len(labels))] or [0]) or 1
    plot_h = height - 50
    bar_w = max(2.0, (width - 50) / n * 0.8)
    step = (width - 50) / n
    out = [f'<svg class="chart" id="{chart_id}" role="img" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{escape(title)}</title>",
           f'<line x1="40" y1="{10 + plot_h}" x2="{width - 5}" y2="{10 + plot_h}" '
           'stroke="#888"/>',
           f'<text x="36" y="16" text-anchor="end" font-size="10">{top}</text>',
           f'<text x="36" y="{10 + plot_h}" text-anchor="end" font-size="10">0</text>']
    for i, label in enumerate(labels):
        x = 45 + i * step
        y: float = 10 + plot_h
        for key, legend, values in series:
            v = values[i]
            h = plot_h * v / top
            y -= h
            colour = COLOURS.get(key, "#555")
            out.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                       f'height="{h:.1f}" fill="{colour}" data-label="{escape(label)}" '
                       f'data-series="{escape(key)}" data-value="{v}">'
                       f"<title>{escape(label)} {escape(legend)}: {v}</title></rect>")
        if n <= 12:
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 24}" font-size="10" '
                       f'text-anchor="middle">{escape(label)}</text>')
        elif i % max(1, n // 15) == 0:
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 30}" font-size="9" '
                       f'text-anchor="end" transform="rotate(-45 {x + bar_w / 2:.1f} '
                       f'{height - 30})">{escape(label)}</text>')
    lx = 45
    for key, legend, _ in series:
        out.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="10" '
                   f'fill="{COLOURS.get(key, "#555")}"/>'
                   f'<text x="{lx + 14}" y="{height - 3}" font-size="11">{escape(legend)}</text>')
        lx += 20 + 7 * len(legend)
    out.append("</svg>")
    return "".join(out)


def horizontal_bars(chart_id: str, items: Sequence[tuple[str, int]], *, title: str = "",
                    colour: str = "#c62828") -> str:
    rows = max(1, len(items))
    height = 20 + rows * 22
    width = 640
    top = max([v for _, v in items] or [0]) or 1
    out = [f'<svg class="chart" id="{chart_id}" role="img" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{escape(title)}</title>"]
    for i, (label, v) in enumerate(items):
        y = 10 + i * 22
        w = 400 * v / top
        out.append(f'<text x="170" y="{y + 14}" text-anchor="end" font-size="12">'
                   f"{escape(label)}</text>"
                   f'<rect class="bar" x="176" y="{y}" width="{w:.1f}" height="16" '
                   f'fill="{colour}" data-label="{escape(label)}" data-value="{v}">'
                   f"<title>{escape(label)}: {v}</title></rect>"
                   f'<text x="{180 + w:.1f}" y="{y + 13}" font-size="11">{v}</text>')
    out.append("</svg>")
    return "".join(out)
