"""Text tables of a replay result: the seven-state table, the bottleneck ranking, warning and invalid counts."""

from __future__ import annotations

import sys
from typing import Any

from .core.vocabulary import STATES


def render_tables(result: dict[str, Any], out: Any = None) -> None:
    w = (out or sys.stdout).write
    w(f"judged at {result['now']}\n\n")
    rows = result["summary"]
    short = ["c_norm", "c_acc", "c_warn", "ip_norm", "ip_acc", "ip_warn", "cancel"]
    head = f"{'process':<22} {'node':<26} " + " ".join(f"{s:>7}" for s in short)
    head += f" {'total':>7} {'normal':>7} {'accept':>7} {'warn':>7}  flag"
    w("Seven-state table\n" + head + "\n" + "-" * len(head) + "\n")

    def pct(x: float | None) -> str:
        return "    n/a" if x is None else f"{x:7.1%}"

    for r in rows:
        w(f"{r['process']:<22} {r['node']:<26} " + " ".join(f"{r[s]:>7}" for s in STATES))
        rates = r["rates"]
        w(f" {r['total']:>7} {pct(rates['normal'])} {pct(rates['acceptable'])} {pct(rates['warning'])}  {r['flag'] or ''}\n")
    ranked = sorted((r for r in rows if r["duration_s"]["count"]), key=lambda r: -r["duration_s"]["p90"])
    w("\nBottlenecks (completed runs, working time)\n")
    w(f"{'rank':>4} {'process':<22} {'node':<26} {'count':>7} {'mean':>10} {'p50':>10} {'p90':>10} {'max':>10}\n")
    for i, r in enumerate(ranked, 1):
        d = r["duration_s"]
        w(f"{i:>4} {r['process']:<22} {r['node']:<26} {d['count']:>7} {_dur(d['mean'])} {_dur(d['p50'])} "
          f"{_dur(d['p90'])} {_dur(d['max'])}\n")
    by_kind: dict[str, int] = {}
    for x in result["warnings"]:
        by_kind[x["kind"]] = by_kind.get(x["kind"], 0) + 1
    w("\nWarnings: " + (", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())) or "none") + "\n")
    invalid = {k: v for k, v in result["invalid"].items() if v}
    w("Invalid events: " + (", ".join(f"{k} {v}" for k, v in invalid.items()) or "none") + "\n")


def _dur(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:9.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:9.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:9.1f}m"
    return f"{seconds:9.1f}s"
