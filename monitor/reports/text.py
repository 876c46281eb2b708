"""Readable text of the analyses: period reports, backtests and recommendations as aligned tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ..core.instants import US, parse_instant, to_datetime
from ..core.periods import zone_of
from ..core.vocabulary import CROSSING_KINDS, STATES

SHORT_STATES = ("c_norm", "c_acc", "c_warn", "ip_norm", "ip_acc", "ip_warn", "cancel")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """Columns padded to their widest cell; the first `left` columns left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return " ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    out = [line(cells[0]), "-" * (sum(widths) + len(widths) - 1), *(line(r) for r in cells[1:])]
    return "\n".join(s.rstrip() for s in out) + "\n"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def local_label(instant: str, timezone: str) -> str:
    """The local date (and time, unless midnight) of an instant of a report."""
    local = to_datetime(parse_instant(instant)).astimezone(zone_of(timezone))
    return local.strftime("%Y-%m-%d %a" if local.hour == local.minute == 0 else "%Y-%m-%d %H:%M")


# ---------------------------------------------------------------- report


def status_rows(rows: list[dict[str, Any]], by_segment: bool) -> tuple[list[str], list[list[Any]]]:
    keys = ["process", "node", *(["segment"] if by_segment else [])]
    headers = [*keys, *SHORT_STATES, "total", "normal", "accept", "warn", "flag", "p50", "p90"]
    body = [[*(r[k] for k in keys), *(r[s] for s in STATES), r["total"], pct(r["rates"]["normal"]),
             pct(r["rates"]["acceptable"]), pct(r["rates"]["warning"]), r["flag"] or "",
             duration(r["duration_s"]["p50"]), duration(r["duration_s"]["p90"])] for r in rows]
    return headers, body


def render_report(doc: dict[str, Any], invalid: dict[str, int] | None = None) -> str:
    tz = doc["timezone"]
    out = [f"Period report by {doc['period']} ({tz}), judged at {doc['now']}\n"]
    by_segment = any("segment" in r for p in doc["periods"] for r in p["summary"])
    for p in doc["periods"]:
        end = to_datetime(parse_instant(p["end"])).astimezone(zone_of(tz)) - timedelta(microseconds=1)
        out.append(f"\n== {local_label(p['start'], tz)} to {end:%Y-%m-%d %a}  (judged at {p['judged_at']})\n")
        if not p["summary"]:
            out.append("no runs\n")
            continue
        out.append(table(*status_rows(p["summary"], by_segment), left=3 if by_segment else 2))
        out.append("\n" + table(["owner", *SHORT_STATES, "total", "normal", "accept", "warn", "flag"],
                                [[o["owner"] or "(none)", *(o[s] for s in STATES), o["total"],
                                  pct(o["rates"]["normal"]), pct(o["rates"]["acceptable"]),
                                  pct(o["rates"]["warning"]), o["flag"] or ""] for o in p["owners"]]))
    if invalid is not None:
        out.append("\nInvalid events: " + (", ".join(f"{k} {v}" for k, v in invalid.items() if v) or "none") + "\n")
    return "".join(out)


# ---------------------------------------------------------------- backtest


def _attainment(side: dict[str, Any] | None) -> str:
    return "-" if side is None else pct(side["rates"]["normal"])


def render_backtest(doc: dict[str, Any], days: float, invalid: tuple[dict[str, int], dict[str, int]]) -> str:
    """`days`: the span of the events in days, for warnings per day."""
    per_day = 1 / days if days > 0 else 0.0
    body = []
    for r in doc["rows"]:
        cur, cand = (sum(r["warnings"][side].values()) * per_day for side in ("current", "candidate"))
        body.append([r["process"], r["node"], *((r[s] or {}).get("total", 0) for s in ("current", "candidate")),
                     _attainment(r["current"]), _attainment(r["candidate"]), f"{cur:.1f}", f"{cand:.1f}",
                     f"{cand - cur:+.1f}", r["changed_runs"]])
    out = [f"Backtest judged at {doc['now']} over {days:.1f} days of events\n\n",
           table(["process", "node", "runs", "runs'", "normal", "normal'", "warn/day", "warn/day'", "change",
                  "changed"], body, left=2),
           f"\n(' = under the candidate policies; warnings: {', '.join(CROSSING_KINDS)})\n"]
    total = sum(r["changed_runs"] for r in doc["rows"])
    out.append(f"\n{total} run(s) change state" + (":" if doc["changed"] else "") + "\n")
    if doc["changed"]:
        out.append(table(["order_id", "node", "run", "current", "candidate"],
                         [[c["order_id"], c["node"], c["run"], c["current"] or "-", c["candidate"] or "-"]
                          for c in doc["changed"][:20]], left=2))
        if total > 20:
            out.append(f"... and {total - 20} more (--json lists up to {len(doc['changed'])})\n")
    for label, counts in zip(("current", "candidate"), invalid, strict=True):
        out.append(f"Invalid events ({label}): " + (", ".join(f"{k} {v}" for k, v in counts.items() if v) or "none")
                   + "\n")
    return "".join(out)


def event_days(first_at: int | None, now: int | None) -> float:
    return 0.0 if first_at is None or now is None else (now - first_at) / US / 86400


# ---------------------------------------------------------------- recommend


def render_recommend(doc: dict[str, Any]) -> str:
    body = []
    for r in doc["rows"]:
        cur, rec = r["current"], r["recommended"]
        body.append([r["process"], r["node"], r["segment"] or "", r["runs"],
                     duration(cur["commitment_s"]), duration(cur["tolerance_s"]), pct(cur["attainment"]),
                     pct(cur["tolerance_attainment"]), duration(rec["commitment_s"]), duration(rec["tolerance_s"]),
                     pct(rec["attainment"]), pct(rec["tolerance_attainment"])])
    out = [f"Limits for {doc['target']:.1%} within commitment and {doc['tolerance_target']:.1%} within tolerance, "
           f"judged at {doc['now']}\n\n",
           table(["process", "node", "segment", "runs", "C", "T", "att", "tol_att", "C'", "T'", "att'", "tol_att'"],
                 body, left=3),
           "\n(' = recommended)\n"]
    if doc["skipped"]:
        out.append("\nSkipped (too few runs, or none completed):\n")
        out.append(table(["process", "node", "segment", "runs"],
                         [[s["process"], s["node"], s["segment"] or "", s["runs"]] for s in doc["skipped"]], left=3))
    return "".join(out)
