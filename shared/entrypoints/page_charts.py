"""Inline SVG charts drawn by the app: requests per bucket, stacked by category, with a table of the same figures for
screen readers and for reading the numbers. Colours come from classes in app.css (light and dark), not from style
attributes, which the Content-Security-Policy refuses."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.entrypoints.page_html import table, text
from shared.queries.usage_series import CATEGORIES

WIDTH, HEIGHT, PAD = 600, 160, 4


def _label(moment: Any, step: str) -> str:
    if isinstance(moment, datetime):
        return moment.strftime("%H:00" if step == "hour" else "%m-%d")
    return text(moment)


def stacked_bars(title: str, series: dict[str, Any]) -> str:
    """The series' buckets as stacked bars (one per bucket), then the figures as a table in a <details>."""
    buckets: Sequence[dict[str, Any]] = series["buckets"]
    step = str(series["step"])
    peak = max((int(b["total"]) for b in buckets), default=0) or 1
    slot = (WIDTH - 2 * PAD) / max(len(buckets), 1)
    bars: list[str] = []
    for n, bucket in enumerate(buckets):
        y = float(HEIGHT - PAD)
        for category in CATEGORIES:
            value = int(bucket[category])
            if not value:
                continue
            h = (HEIGHT - 2 * PAD) * value / peak
            y -= h
            bars.append(f'<rect class="c-{category}" x="{PAD + n * slot + 1:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" '
                        f'height="{h:.1f}"><title>{html.escape(_label(bucket["from"], step))}: {value} {category}</title></rect>')
    total = sum(int(b["total"]) for b in buckets)
    legend = "".join(f'<li><span class="key c-{c}" aria-hidden="true"></span>{c} '
                     f'{sum(int(b[c]) for b in buckets)}</li>' for c in CATEGORIES)
    figures = table(f"{title}: requests per {step}", ("From", "Total", *CATEGORIES),
                    ([html.escape(_label(b["from"], step)), *(str(int(b[k])) for k in ("total", *CATEGORIES))] for b in buckets),
                    numeric=range(1, 2 + len(CATEGORIES)))
    return (f'<figure class="chart"><figcaption>{html.escape(title)}: {total} requests (peak {peak if total else 0} per {step})'
            f'</figcaption><svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}: {total} requests">'
            f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"></line>{"".join(bars)}</svg>'
            f'<ul class="legend">{legend}</ul><details><summary>The figures</summary>{figures}</details></figure>')
