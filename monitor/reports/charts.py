"""Inline SVG charts of a period report: attainment per process over the periods (lines), and the bottleneck
ranking of a period by p90 duration (bars). Plain SVG text, no script and no external resource."""

from __future__ import annotations

from html import escape
from typing import Any

from ..core.vocabulary import CANCELLED, COMPLETED_NORMAL, IN_PROGRESS_NORMAL, ORDER_NODE
from .text import duration

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")
TIGHTEN_AT, IMPROVE_BELOW = 0.9, 0.1  # as the flags of CONTRACTS.md section 5


def attainment_series(doc: dict[str, Any]) -> dict[str, list[float | None]]:
    """Per process (its nodes pooled; the order level as a series of its own), the share of non-cancelled runs
    within commitment in each period (None: no such run)."""
    names: list[str] = []
    for p in doc["periods"]:
        for r in p["summary"]:
            name = f"{r['process']} (order)" if r["node"] == ORDER_NODE else r["process"]
            if name not in names:
                names.append(name)
    series: dict[str, list[float | None]] = {name: [] for name in sorted(names)}
    for p in doc["periods"]:
        pooled: dict[str, list[int]] = {}
        for r in p["summary"]:
            name = f"{r['process']} (order)" if r["node"] == ORDER_NODE else r["process"]
            acc = pooled.setdefault(name, [0, 0])
            acc[0] += r[COMPLETED_NORMAL] + r[IN_PROGRESS_NORMAL]
            acc[1] += r["total"] - r[CANCELLED]
        for name, values in series.items():
            normal, judged = pooled.get(name, (0, 0))
            values.append(normal / judged if judged else None)
    return series


def attainment_chart(labels: list[str], series: dict[str, list[float | None]], width: int = 960,
                     height: int = 320) -> str:
    left, right, top, bottom = 56, 200, 16, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(labels)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - v)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="attainment per process over the periods">']
    for v in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="axis" text-anchor="end">{v:.0%}</text>')
    for v, cls, text in ((TIGHTEN_AT, "tighten", "tighten"), (IMPROVE_BELOW, "improve", "improve")):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="limit {cls}"/>'
                     f'<text x="{left + plot_w + 4}" y="{y(v) + 4:.1f}" class="axis {cls}">{text}</text>')
    step = max(1, -(-n // 10))  # at most 10 labels
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 18}" class="axis" text-anchor="middle">'
                         f'{escape(label)}</text>')
    for k, (name, values) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"><title>'
                         f'{escape(name)}, {escape(labels[i])}: {v:.1%}</title></circle>')
        parts.extend(f'<polyline points="{" ".join(r)}" fill="none" stroke="{colour}" stroke-width="2"/>'
                     for r in runs if len(r) > 1)
        ly = top + 14 + 18 * k
        parts.append(f'<rect x="{left + plot_w + 70}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{left + plot_w + 88}" y="{ly + 1}" class="legend">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bottleneck_chart(rows: list[dict[str, Any]], limit: int = 12, width: int = 960) -> str:
    """Nodes of one period ranked by p90 working duration of their completed runs (the order level left out)."""
    ranked = sorted((r for r in rows if r["duration_s"]["count"] and r["node"] != ORDER_NODE),
                    key=lambda r: -r["duration_s"]["p90"])[:limit]
    if not ranked:
        return '<p class="muted">No completed node runs in this period.</p>'
    label_w, bar_h, gap = 330, 20, 6
    height = len(ranked) * (bar_h + gap) + 10
    top_value = ranked[0]["duration_s"]["p90"] or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="bottleneck ranking by p90 duration">']
    for i, r in enumerate(ranked):
        d = r["duration_s"]
        label = f"{i + 1}. {r['process']} / {r['node']}" + (f" [{r['segment']}]" if "segment" in r else "")
        w = (width - label_w - 230) * d["p90"] / top_value
        yy = 5 + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 8}" y="{yy + 14}" class="legend" text-anchor="end">{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{yy}" width="{max(w, 1):.1f}" height="{bar_h}" class="bar">'
                     f'<title>p90 {d["p90"]:.0f} s, p50 {d["p50"]:.0f} s, {d["count"]} completed runs</title></rect>'
                     f'<text x="{label_w + max(w, 1) + 6:.1f}" y="{yy + 14}" class="axis">{duration(d["p90"])}'
                     f' (p50 {duration(d["p50"])}, n={d["count"]})</text>')
    parts.append("</svg>")
    return "".join(parts)

