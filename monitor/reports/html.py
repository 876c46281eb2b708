"""A period report as one self-contained HTML page (CONTRACTS.md section 8, `--format html`): inline CSS and SVG,
no script, nothing fetched from anywhere. Per period the status table and the owners' table, flags highlighted;
on top, attainment per process over the periods and the bottleneck ranking of the last period."""

from __future__ import annotations

from html import escape
from typing import Any

from ..core.vocabulary import STATES
from .charts import attainment_chart, attainment_series, bottleneck_chart
from .text import SHORT_STATES, duration, local_label, pct

STYLE = """
body{font:13px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px 32px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px} h3{font-size:15px;margin:16px 0 6px}
.muted{color:#68707d} .meta{margin:0 0 16px;color:#4a5260}
table{border-collapse:collapse;margin:6px 0 14px;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto;max-width:100%}
th,td{padding:3px 6px;border-bottom:1px solid #e3e6ea;text-align:right;white-space:nowrap}
th{background:#f4f6f8;font-weight:600;position:sticky;top:0} td.k,th.k{text-align:left}
tr.tighten td{background:#eaf7ee} tr.improve td{background:#fdecec}
.flag{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600}
.flag.tighten{background:#2f9e55;color:#fff} .flag.improve{background:#d03b3b;color:#fff}
details{border:1px solid #e3e6ea;border-radius:6px;padding:6px 12px;margin:8px 0}
summary{cursor:pointer;font-weight:600} summary .muted{font-weight:400}
svg{max-width:100%;height:auto} svg .grid{stroke:#e3e6ea} svg .axis{font-size:11px;fill:#68707d}
svg .legend{font-size:12px;fill:#1d2330} svg .limit{stroke-dasharray:5 4;stroke-width:1.2}
svg .limit.tighten{stroke:#2f9e55} svg .limit.improve{stroke:#d03b3b} svg text.tighten{fill:#2f9e55}
svg text.improve{fill:#d03b3b} svg .bar{fill:#3b6fb6}
.legend-note{font-size:12px;color:#68707d;margin:2px 0 10px}
"""


def _flag(flag: str | None) -> str:
    return f'<span class="flag {flag}">{flag}</span>' if flag else ""


def _rates(rates: dict[str, float | None]) -> list[str]:
    return [pct(rates["normal"]), pct(rates["acceptable"]), pct(rates["warning"])]


def _table(headers: list[str], rows: list[tuple[str | None, list[str]]], keys: int) -> str:
    """`rows`: (flag, cells already escaped); the first `keys` columns are names (left-aligned)."""
    head = "".join(f'<th class="k">{h}</th>' if i < keys else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = []
    for flag, cells in rows:
        tds = "".join(f'<td class="k">{c}</td>' if i < keys else f"<td>{c}</td>" for i, c in enumerate(cells))
        body.append(f'<tr class="{flag or ""}">{tds}</tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def status_table(rows: list[dict[str, Any]], by_segment: bool) -> str:
    keys = ["process", "node", *(["segment"] if by_segment else [])]
    headers = [*keys, *SHORT_STATES, "total", "normal", "accept.", "warning", "flag", "p50", "p90"]
    cells = []
    for r in rows:
        d = r["duration_s"]
        cells.append((r["flag"], [*(escape(str(r[k])) for k in keys), *(str(r[s]) for s in STATES), str(r["total"]),
                                  *_rates(r["rates"]), _flag(r["flag"]), duration(d["p50"]), duration(d["p90"])]))
    return _table(headers, cells, len(keys))


def owners_table(owners: list[dict[str, Any]]) -> str:
    headers = ["owner", *SHORT_STATES, "total", "normal", "accept.", "warning", "flag"]
    cells = [(o["flag"], [escape(o["owner"]) if o["owner"] is not None else '<span class="muted">(none)</span>',
                          *(str(o[s]) for s in STATES), str(o["total"]), *_rates(o["rates"]), _flag(o["flag"])])
             for o in owners]
    return _table(headers, cells, 1)


def report_html(doc: dict[str, Any], invalid: dict[str, int] | None = None, title: str = "SLA period report") -> str:
    tz = doc["timezone"]
    periods = doc["periods"]
    by_segment = any("segment" in r for p in periods for r in p["summary"])
    labels = [local_label(p["start"], tz) for p in periods]
    axis = [label[:7] if doc["period"] == "month" else label[:10] for label in labels]
    flagged = sum(1 for p in periods for r in p["summary"] if r["flag"])
    meta = (f"By {escape(doc['period'])} in {escape(tz)} &middot; {len(periods)} period(s) &middot; judged at "
            f"{escape(str(doc['now']))} &middot; {flagged} flagged row(s)")
    if invalid is not None:
        bad = ", ".join(f"{escape(k)} {v}" for k, v in invalid.items() if v) or "none"
        meta += f" &middot; invalid events: {bad}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">', '<link rel="icon" href="data:,">',
           f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{escape(title)}</h1><p class=\"meta\">{meta}</p>"]
    if periods:
        out.append("<h2>Attainment per process over the periods</h2>")
        out.append('<p class="legend-note">Share of non-cancelled runs within commitment (completed and in '
                   "progress at the period's end); the nodes of a process pooled, the order level on its own. "
                   "Dashed: the flags' thresholds (tighten at 90 %, improve below 10 %).</p>")
        out.append(attainment_chart(axis, attainment_series(doc)))
        out.append(f"<h2>Bottlenecks of the last period ({escape(labels[-1])})</h2>")
        out.append('<p class="legend-note">Nodes ranked by the p90 of the working time of their completed runs.</p>')
        out.append(bottleneck_chart(periods[-1]["summary"]))
    else:
        out.append('<p class="muted">No period to report.</p>')
    out.append("<h2>Periods</h2>")
    for i, (p, label) in enumerate(reversed(list(zip(periods, labels, strict=True)))):
        marks = sum(1 for r in p["summary"] if r["flag"])
        out.append(f"<details{' open' if i == 0 else ''}><summary>{escape(label)} "
                   f'<span class="muted">&middot; {sum(r["total"] for r in p["summary"])} runs &middot; {marks} '
                   f"flagged &middot; judged at {escape(p['judged_at'])}</span></summary>")
        if p["summary"]:
            out.append("<h3>Status table</h3>" + status_table(p["summary"], by_segment))
            out.append("<h3>Owners</h3>" + owners_table(p["owners"]))
        else:
            out.append('<p class="muted">No runs in this period.</p>')
        out.append("</details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
