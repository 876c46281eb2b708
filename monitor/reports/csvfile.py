"""A period report as CSV (CONTRACTS.md section 8, `--format csv`): one line per (period, row); an empty cell is
a null value."""

from __future__ import annotations

import csv
import io
from typing import Any

from ..core.vocabulary import STATES

RATE_FIELDS = ("normal", "acceptable", "warning")
DURATION_FIELDS = ("count", "mean", "min", "max", "p50", "p90")


def report_csv(doc: dict[str, Any]) -> str:
    by_segment = any("segment" in r for p in doc["periods"] for r in p["summary"])
    keys = ["process", "node", *(["segment"] if by_segment else [])]
    header = ["period_start", "period_end", "judged_at", *keys, *STATES, "total",
              *(f"rate_{k}" for k in RATE_FIELDS), "flag", *(f"duration_{k}_s" if k != "count" else "duration_count"
                                                           for k in DURATION_FIELDS)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for p in doc["periods"]:
        for r in p["summary"]:
            writer.writerow([p["start"], p["end"], p["judged_at"], *(r[k] for k in keys), *(r[s] for s in STATES),
                             r["total"], *(_cell(r["rates"][k]) for k in RATE_FIELDS), _cell(r["flag"]),
                             *(_cell(r["duration_s"][k]) for k in DURATION_FIELDS)])
    return out.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value
