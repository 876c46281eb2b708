"""Render the Grafana dashboards' panels to PNG with matplotlib, from a real Prometheus, after a real run.

Grafana cannot run on the development machine, so this draws the panels of deploy/grafana/dashboards/*.json
itself: the same PromQL (Grafana variables substituted), the same layout (gridPos), units and thresholds, in a
Grafana-like dark style. It is a picture of what the dashboards show, not a Grafana replacement.

    .venv/bin/pip install matplotlib           # only this script needs it
    .venv/bin/python tools/render_dashboards.py                    # ~5 min: stack, 2 workers, generator, Prometheus
    .venv/bin/python tools/render_dashboards.py --prometheus http://127.0.0.1:9090 --minutes 60   # render only

Without --prometheus it uses (or starts) the local stack, runs two workers with deploy/demo/policies, the demo
order generator of `slamon demo` and a Prometheus (Debian binary) with the shipped rules, scraping every 2 s;
then renders and stops everything it started. PNGs go to docs/img/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules"
POLICIES = ROOT / "deploy" / "demo" / "policies"

BG, PANEL, TEXT, GRID, DIM = "#111217", "#181b1f", "#ccccdc", "#2c3235", "#8e8e9a"
COLORS = {"green": "#73BF69", "yellow": "#FADE2A", "orange": "#FF9830", "red": "#F2495C", "blue": "#5794F2",
          "purple": "#B877D9", "dark-orange": "#FF780A"}
PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#705DA0", "#37872D",
           "#FADE2A", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477"]


# ------------------------------------------------------------------------------------------ Prometheus


class Prom:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
            body = json.loads(r.read())
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]["result"]

    def instant(self, q: str, at: float) -> list[dict]:
        return self._get("/api/v1/query", {"query": q, "time": at})

    def range(self, q: str, start: float, end: float, step: float) -> list[dict]:
        return self._get("/api/v1/query_range", {"query": q, "start": start, "end": end, "step": step})


# ------------------------------------------------------------------------------------------ helpers


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)",
                  lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def legend(fmt: str, metric: dict[str, str]) -> str:
    if not fmt or fmt == "__auto":
        labels = {k: v for k, v in metric.items() if k != "__name__"}
        return ", ".join(f"{k}={v}" for k, v in labels.items()) or metric.get("__name__", "value")
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)


def fmt_value(v: float, unit: str, decimals: int | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if unit == "percentunit":
        return f"{v * 100:.{1 if decimals is None else decimals}f}%"
    if unit == "s":
        if abs(v) < 1:
            return f"{v * 1000:.0f} ms"
        if abs(v) < 120:
            return f"{v:.1f} s"
        if abs(v) < 7200:
            return f"{v / 60:.1f} min"
        return f"{v / 3600:.1f} h"
    if decimals is not None:
        return f"{v:.{decimals}f}"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def threshold_color(v: float, defaults: dict[str, Any]) -> str:
    steps = defaults.get("thresholds", {}).get("steps")
    if not steps or v is None or math.isnan(v):
        return TEXT
    color = steps[0]["color"]
    for s in steps[1:]:
        if s["value"] is not None and v >= s["value"]:
            color = s["color"]
    return COLORS.get(color, color)


def style(ax, title: str, desc: str = "") -> None:
    ax.set_facecolor(PANEL)
    for s in ax.spines.values():
        s.set_color(GRID)
    ax.tick_params(colors=DIM, labelsize=7)
    ax.set_title(title, color=TEXT, fontsize=9, loc="left", pad=6, fontweight="bold")


def time_axis(ax) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if _SPAN[0] < 1800 else "%H:%M"))


_SPAN = [3600.0]


def no_ticks(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def blank(ax, title: str, msg: str = "No data") -> None:
    style(ax, title)
    no_ticks(ax)
    ax.text(0.5, 0.5, msg, color=DIM, ha="center", va="center", transform=ax.transAxes, fontsize=10)


# ------------------------------------------------------------------------------------------ panels


def draw_timeseries(ax, p, prom, values, start, end, step):
    defaults = p["fieldConfig"]["defaults"]
    unit = defaults.get("unit", "short")
    stack = defaults.get("custom", {}).get("stacking", {}).get("mode") == "normal"
    series = []
    for t in p["targets"]:
        for s in prom.range(substitute(t["expr"], values), start, end, step):
            xs = [datetime.fromtimestamp(float(ts), UTC) for ts, _ in s["values"]]
            ys = [float(v) for _, v in s["values"]]
            series.append((legend(t.get("legendFormat", ""), s["metric"]), xs, ys))
    if not series:
        return blank(ax, p["_title"])
    style(ax, p["_title"])
    overrides = {o["matcher"]["options"]: o for o in p["fieldConfig"].get("overrides", [])
                 if o["matcher"]["id"] == "byName"}
    dashed = [re.compile(o["matcher"]["options"]) for o in p["fieldConfig"].get("overrides", [])
              if o["matcher"]["id"] == "byRegexp"]

    def color_of(i, name):
        o = overrides.get(name)
        if o:
            for prop in o["properties"]:
                if prop["id"] == "color":
                    return COLORS.get(prop["value"]["fixedColor"], prop["value"]["fixedColor"])
        return PALETTE[i % len(PALETTE)]

    series.sort(key=lambda s: s[0])
    if stack:
        grid = sorted({x for _, xs, _ in series for x in xs})
        index = {x: i for i, x in enumerate(grid)}
        rows = []
        for _, xs, ys in series:
            row = [0.0] * len(grid)
            for x, y in zip(xs, ys, strict=True):
                row[index[x]] = 0.0 if math.isnan(y) else y
            rows.append(row)
        ax.stackplot(grid, rows, labels=[s[0] for s in series], alpha=0.75,
                     colors=[color_of(i, s[0]) for i, s in enumerate(series)], linewidth=0)
    else:
        for i, (name, xs, ys) in enumerate(series):
            ls = "--" if any(r.fullmatch(name) for r in dashed) else "-"
            ax.plot(xs, ys, ls, label=name, color=color_of(i, name), linewidth=1.4)
        ax.margins(y=0.08)
    ax.grid(color=GRID, linewidth=0.5)
    time_axis(ax)
    if "min" in defaults:
        ax.set_ylim(bottom=defaults["min"])
    if "max" in defaults:
        ax.set_ylim(top=defaults["max"] * (1.02 if defaults["max"] else 1))
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(v, unit, 0 if unit == "percentunit" else None)))
    if len(series) > 7:  # many series: the legend to the right, as Grafana's table legend
        pos = ax.get_position()
        ax.set_position([pos.x0, pos.y0, pos.width * 0.55, pos.height])
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), facecolor=PANEL, edgecolor=GRID,
                  labelcolor=TEXT, framealpha=1)
    else:
        ax.legend(fontsize=6, loc="upper left", facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT, framealpha=0.8)


def instant_rows(p, prom, values, at):
    out = []
    for t in p["targets"]:
        for s in prom.instant(substitute(t["expr"], values), at):
            out.append((t, s["metric"], float(s["value"][1])))
    return out


def styled_rows(ax, p, prom, values, at):
    """The panel's instant rows with the panel styled, or none with the panel left blank ("No data")."""
    rows = instant_rows(p, prom, values, at)
    (style if rows else blank)(ax, p["_title"])
    return rows


def draw_stat(ax, p, prom, values, at):
    rows = styled_rows(ax, p, prom, values, at)
    if not rows:
        return None
    no_ticks(ax)
    d = p["fieldConfig"]["defaults"]
    n = len(rows)
    for i, (t, metric, v) in enumerate(rows):
        x = (i + 0.5) / n
        ax.text(x, 0.62, fmt_value(v, d.get("unit", "none"), d.get("decimals")), ha="center", va="center",
                transform=ax.transAxes, fontsize=17 if n <= 4 else 12, color=threshold_color(v, d),
                fontweight="bold")
        ax.text(x, 0.2, legend(t.get("legendFormat", ""), metric), ha="center", va="center",
                transform=ax.transAxes, fontsize=8, color=DIM)


def decumulate(rows):
    """Histogram bucket series (cumulative by le) -> [(le label, count in that bucket)] sorted by le."""
    by_le = sorted(((float(m["le"]), m["le"], v) for _, m, v in rows), key=lambda r: r[0])
    out, prev = [], 0.0
    for _, le, v in by_le:
        out.append((le, max(v - prev, 0.0)))
        prev = v
    return out


def draw_bargauge(ax, p, prom, values, at):
    rows = styled_rows(ax, p, prom, values, at)
    if not rows:
        return None
    d = p["fieldConfig"]["defaults"]
    unit = d.get("unit", "none")
    t0 = p["targets"][0]
    if t0.get("format") == "heatmap":
        items = [(f"≤ {le}" if le != "+Inf" else "> last", v) for le, v in decumulate(rows)]
    else:
        items = [(legend(t.get("legendFormat", ""), m), v) for t, m, v in rows]
    names = [n for n, _ in items]
    vals = [0.0 if math.isnan(v) else v for _, v in items]
    if d.get("color", {}).get("mode") == "thresholds":
        colors = [threshold_color(v, d) for v in vals]
    else:
        import matplotlib

        cmap = matplotlib.colormaps["RdYlGn_r"]
        colors = [cmap(i / max(len(vals) - 1, 1)) for i in range(len(vals))]
    if p["options"].get("orientation") == "vertical":
        ax.bar(range(len(vals)), vals, color=colors)
        ax.set_xticks(range(len(vals)), names, rotation=0, fontsize=7)
        for i, v in enumerate(vals):
            ax.text(i, v, fmt_value(v, unit, d.get("decimals")), ha="center", va="bottom", color=TEXT, fontsize=7)
        ax.grid(axis="y", color=GRID, linewidth=0.5)
    else:
        # names in the left part of the panel, bars in the rest (Grafana's namePlacement "left")
        y = list(range(len(vals)))[::-1]
        lo = d.get("min", 0)
        hi = d.get("max", max(vals + [lo + 1e-9]) * 1.15)
        span = hi - lo
        total = span / 0.42  # names 43%, bars 42%, values 15% of the panel's width
        left = lo - total * 0.43
        base = 0.0 if lo < 0 < hi else lo  # bars grow from 0 when the range spans it
        ax.barh(y, [min(max(v, lo), hi) - base for v in vals], left=base, color=colors, height=0.6)
        ax.barh(y, [span] * len(vals), left=lo, color=GRID, height=0.6, zorder=0)
        ax.set_xlim(left, hi + total * 0.15)
        ax.set_yticks([])
        for yi, name, v in zip(y, names, vals, strict=True):
            ax.text(left + total * 0.01, yi, name, va="center", ha="left", color=TEXT, fontsize=7)
            ax.text(hi + total * 0.145, yi, fmt_value(v, unit, d.get("decimals")), va="center", ha="right",
                    color=threshold_color(v, d) if d.get("color", {}).get("mode") == "thresholds" else TEXT,
                    fontsize=7, fontweight="bold")
        ax.set_xticks([])


def table_frame(p, rows):
    """Grafana's table transformations used by the dashboards: merge, groupingToMatrix, organize, sortBy."""
    refs = {t["refId"] for t in p["targets"]}
    merged: dict[tuple, dict[str, Any]] = {}
    for t, metric, v in rows:
        labels = {k: val for k, val in metric.items() if k != "__name__"}
        key = tuple(sorted(labels.items()))
        row = merged.setdefault(key, dict(labels))
        row[f"Value #{t['refId']}" if len(refs) > 1 else "Value"] = v
    table = list(merged.values())
    columns: list[str] = []
    for tr in p.get("transformations", []):
        o = tr["options"]
        if tr["id"] == "groupingToMatrix":
            pivot: dict[str, dict[str, Any]] = defaultdict(dict)
            for r in rows:
                t, metric, v = r
                pivot[metric[o["rowField"]]][metric[o["columnField"]]] = v
            corner = f"{o['rowField']}\\{o['columnField']}"
            table = [{corner: k, **cols} for k, cols in sorted(pivot.items())]
        elif tr["id"] == "organize":
            index = o.get("indexByName", {})
            exclude = {k for k, x in o.get("excludeByName", {}).items() if x}
            rename = o.get("renameByName", {})
            keys = []
            for r in table:
                keys += [k for k in r if k not in keys]
            keys = [k for k in keys if k not in exclude]
            keys.sort(key=lambda k: index.get(k, 100))
            table = [{rename.get(k, k): r.get(k) for k in keys} for r in table]
            columns = [rename.get(k, k) for k in keys]
        elif tr["id"] == "sortBy":
            s = o["sort"][0]
            table.sort(key=lambda r: (r.get(s["field"]) is None, r.get(s["field"]) or 0), reverse=s.get("desc"))
    if not columns:
        columns = list(dict.fromkeys(k for r in table for k in r))
    return columns, table


def draw_table(ax, p, prom, values, at):
    rows = styled_rows(ax, p, prom, values, at)
    if not rows:
        return None
    no_ticks(ax)
    columns, table = table_frame(p, rows)
    d = p["fieldConfig"]["defaults"]
    overrides = {o["matcher"]["options"]: {pr["id"]: pr["value"] for pr in o["properties"]}
                 for o in p["fieldConfig"].get("overrides", []) if o["matcher"]["id"] == "byName"}
    regex_overrides = [(re.compile(o["matcher"]["options"]), {pr["id"]: pr["value"] for pr in o["properties"]})
                       for o in p["fieldConfig"].get("overrides", []) if o["matcher"]["id"] == "byRegexp"]
    cells, colors = [], []
    for r in table:
        line, cl = [], []
        for c in columns:
            v = r.get(c)
            ov = {**d, **overrides.get(c, {})}
            for rx, props in regex_overrides:
                if rx.fullmatch(c):
                    ov.update(props)
            if isinstance(v, float):
                line.append(fmt_value(v, ov.get("unit", "none"), ov.get("decimals")))
                if "color" in ov and v:
                    cl.append(COLORS.get(ov["color"]["fixedColor"], TEXT))
                elif ov.get("custom", {}).get("cellOptions", {}).get("type") == "color-text" or (
                        ov.get("custom.cellOptions", {}).get("type") == "color-text"):
                    cl.append(threshold_color(v, ov))
                else:
                    cl.append(TEXT)
            else:
                line.append("" if v is None else str(v))
                cl.append(TEXT)
        cells.append(line)
        colors.append(cl)
    tab = ax.table(cellText=cells or [[""] * len(columns)], colLabels=columns, loc="upper center",
                   cellLoc="center", colLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.scale(1, 1.25)
    for (ri, ci), cell in tab.get_celld().items():
        cell.set_edgecolor(GRID)
        cell.set_facecolor(PANEL if ri else "#22252b")
        cell.get_text().set_color(TEXT if ri == 0 or not colors else colors[ri - 1][ci])
        if ri == 0:
            cell.get_text().set_fontweight("bold")


def draw_heatmap(ax, p, prom, values, start, end, step):
    import matplotlib.dates as mdates
    import numpy as np

    t = p["targets"][0]
    series = prom.range(substitute(t["expr"], values), start, end, step)
    if not series:
        return blank(ax, p["_title"])
    style(ax, p["_title"])
    series.sort(key=lambda s: float(s["metric"]["le"]))
    times = sorted({float(ts) for s in series for ts, _ in s["values"]})
    idx = {ts: i for i, ts in enumerate(times)}
    cum = np.zeros((len(series), len(times)))
    for i, s in enumerate(series):
        for ts, v in s["values"]:
            cum[i, idx[float(ts)]] = float(v)
    counts = np.diff(np.vstack([np.zeros(len(times)), cum]), axis=0).clip(min=0)
    keep = counts.sum(axis=1) > 0
    if keep.any():  # show the bucket range that has data, plus one bucket either side
        rows = np.flatnonzero(keep)
        lo, hi = max(rows[0] - 1, 0), min(rows[-1] + 2, len(series))
    else:
        lo, hi = 0, len(series)
    counts = counts[lo:hi]
    labels = [s["metric"]["le"] for s in series[lo:hi]]
    x = mdates.date2num([datetime.fromtimestamp(ts, UTC) for ts in times])
    import matplotlib

    cmap = matplotlib.colormaps["Oranges"].copy()
    cmap.set_bad(PANEL)
    ax.imshow(np.ma.masked_equal(counts, 0) ** 0.5, aspect="auto", origin="lower", cmap=cmap,
              extent=(x[0], x[-1], -0.5, len(labels) - 0.5), interpolation="nearest")
    ax.set_yticks(range(len(labels)), [f"≤ {fmt_value(float(le), 's') if le != '+Inf' else '+Inf'}"
                                       for le in labels], fontsize=7)
    ax.xaxis_date()
    time_axis(ax)


# ------------------------------------------------------------------------------------------ dashboards


def render(dash_path: Path, prom: Prom, values: dict[str, str], start: float, end: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    dash = json.loads(dash_path.read_text())
    panels = [q for p in dash["panels"] for q in [p, *p.get("panels", [])]]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig = plt.figure(figsize=(16, height * 0.36 + 0.6), facecolor=BG)
    fig.suptitle(f"{dash['title']}    ({datetime.fromtimestamp(start, UTC):%Y-%m-%d %H:%M} – "
                 f"{datetime.fromtimestamp(end, UTC):%H:%M} UTC; rendered by tools/render_dashboards.py)",
                 color=TEXT, fontsize=11, x=0.01, ha="left", y=0.995)
    gs = GridSpec(height, 24, figure=fig, left=0.06, right=0.99, top=1 - 0.5 / (height * 0.36 + 0.6),
                  bottom=0.02, hspace=0.0, wspace=0.8)
    _SPAN[0] = end - start
    step = max((end - start) / 240, 2)
    for p in panels:
        g = p["gridPos"]
        p["_title"] = substitute(p["title"], values)
        if p["type"] == "row":
            ax = fig.add_subplot(gs[g["y"]:g["y"] + 1, :])
            ax.axis("off")
            ax.text(0, 0.5, p["_title"], color=TEXT, fontsize=10, fontweight="bold", va="center",
                    transform=ax.transAxes)
            continue
        ax = fig.add_subplot(gs[g["y"]:g["y"] + g["h"], g["x"]:g["x"] + g["w"]])
        pos = ax.get_position()  # leave room for the title above and tick labels below, as Grafana's panel chrome
        unit_h = pos.height / g["h"]
        bottom = (0.55 if p["type"] in ("timeseries", "heatmap") else 0.8 if p["options"].get(
            "orientation") == "vertical" else 0.1) * unit_h
        ax.set_position([pos.x0, pos.y0 + bottom, pos.width, pos.height - bottom - 0.45 * unit_h])
        try:
            if p["type"] == "timeseries":
                draw_timeseries(ax, p, prom, values, start, end, step)
            elif p["type"] == "stat":
                draw_stat(ax, p, prom, values, end)
            elif p["type"] == "bargauge":
                draw_bargauge(ax, p, prom, values, end)
            elif p["type"] == "table":
                draw_table(ax, p, prom, values, end)
            elif p["type"] == "heatmap":
                draw_heatmap(ax, p, prom, values, start, end, step)
            else:
                blank(ax, p["_title"], f"({p['type']} panel not rendered)")
        except Exception as exc:  # noqa: BLE001 - one bad panel should not lose the picture
            blank(ax, p["_title"], f"error: {exc}"[:80])
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, facecolor=BG)
    plt.close(fig)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def render_all(prom: Prom, start: float, end: float, out_dir: Path, process: str, node: str) -> None:
    rng = f"{max(int(end - start), 60)}s"
    common = {"__rate_interval": "30s", "__interval": "30s", "__range": rng, "ds": "prometheus"}
    render(DASHBOARDS / "slamon-overview.json", prom, {**common, "process": ".+"}, start, end,
           out_dir / "dashboard-overview.png")
    render(DASHBOARDS / "slamon-node.json", prom, {**common, "process": process, "node": node}, start, end,
           out_dir / "dashboard-node.png")
    render(DASHBOARDS / "slamon-operations.json", prom, common, start, end, out_dir / "dashboard-operations.png")


# ------------------------------------------------------------------------------------------ a real run


def _wait(url: str, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"{what} not ready after {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run(args: argparse.Namespace) -> None:
    from monitor.demo.generator import Generator
    from monitor.localstack import session_stack
    from monitor.localstack.procs import free_port
    from monitor.settings import Settings

    if shutil.which("prometheus") is None:
        raise SystemExit("needs the prometheus binary (make install installs Debian's)")
    procs: list[subprocess.Popen] = []
    with session_stack() as stack, tempfile.TemporaryDirectory(prefix="slamon-render-") as tmp:
        tmpdir = Path(tmp)
        prefix = f"render{uuid.uuid4().hex[:6]}."
        ports = [free_port(), free_port()]
        try:
            for i, port in enumerate(ports):
                env = {**os.environ, **stack.env, "SLAMON_TOPIC_PREFIX": prefix, "SLAMON_APP_ID": prefix.rstrip("."),
                       "SLAMON_STORE": "memory://", "SLAMON_WEB_PORT": str(port), "SLAMON_TICK_INTERVAL": "0.5",
                       "SLAMON_DATA_DIR": str(tmpdir / f"w{i}"), "SLAMON_PARTITIONS": "6",
                       "SLAMON_POLICIES": str(POLICIES) if i == 0 else ""}
                log = (tmpdir / f"worker-{i}.log").open("wb")
                procs.append(subprocess.Popen([sys.executable, "-m", "monitor.cli", "worker"], cwd=ROOT, env=env,
                                              stdout=log, stderr=subprocess.STDOUT))
                _wait(f"http://127.0.0.1:{port}/readyz", 120, procs[-1], f"worker {i + 1}")
                print(f"worker {i + 1} ready on :{port}", flush=True)
            prom_port = free_port()
            config = {"global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
                      "rule_files": [str(p) for p in sorted(RULES.glob("*.rules.yml"))],
                      "scrape_configs": [{"job_name": "slamon", "static_configs": [
                          {"targets": [f"127.0.0.1:{p}" for p in ports]}]}]}
            (tmpdir / "prometheus.yml").write_text(json.dumps(config))
            plog = (tmpdir / "prometheus.log").open("wb")
            tsdb = args.tsdb or tmpdir / "tsdb"
            procs.append(subprocess.Popen(
                ["prometheus", f"--config.file={tmpdir / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}",
                 f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"], stdout=plog,
                stderr=subprocess.STDOUT))
            _wait(f"http://127.0.0.1:{prom_port}/-/ready", 30, procs[-1], "prometheus")
            time.sleep(5)
            start = time.time()
            print(f"generating orders for {args.duration:.0f} s at {args.rate}/s ...", flush=True)
            gen = Generator(Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": stack.kafka_bootstrap}),
                            f"{prefix}workflow.events", random.Random(args.seed))
            with contextlib.suppress(TimeoutError):
                asyncio.run(asyncio.wait_for(gen.run(args.rate), args.duration))
            end = time.time()
            print(f"{gen.n} orders, {gen.sent} events (start {start:.0f}, end {end:.0f})", flush=True)
            time.sleep(5)  # the last scrapes and rule evaluations
            render_all(Prom(f"http://127.0.0.1:{prom_port}"), start, end, args.out, args.process, args.node)
        finally:
            for p in reversed(procs):
                _stop(p)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus", metavar="URL", help="render from this Prometheus only (no run)")
    ap.add_argument("--minutes", type=float, default=60, help="with --prometheus: the last N minutes (default 60)")
    ap.add_argument("--duration", type=float, default=240, help="seconds of generated orders (default 240)")
    ap.add_argument("--rate", type=float, default=1.5, help="new orders per second (default 1.5)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--process", default="broadband_install", help="process of the node drill-down")
    ap.add_argument("--node", default="installation", help="node of the node drill-down")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="output directory (default docs/img)")
    ap.add_argument("--tsdb", type=Path, help="keep Prometheus's data in this directory (to render again later)")
    ap.add_argument("--start", type=float, help="with --prometheus: start of the time range (unix seconds)")
    ap.add_argument("--end", type=float, help="with --prometheus: end of the time range (unix seconds)")
    args = ap.parse_args()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("needs matplotlib: .venv/bin/pip install matplotlib") from None
    if args.prometheus:
        end = args.end or time.time()
        start = args.start or end - args.minutes * 60
        render_all(Prom(args.prometheus), start, end, args.out, args.process, args.node)
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
