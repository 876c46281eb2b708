"""`slamon backtest`: the same events under two policy directories, side by side (CONTRACTS.md section 9)."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from ..reports.analyses import backtest
from ..reports.text import event_days, render_backtest
from .common import load_or_report
from .eventsource import add_analysis, event_items, guarded, now_of, write_output
from .framing import Failed

PROG = "slamon backtest"
EXAMPLE = """example (would the limits recommended for 90 % have changed last quarter's picture?):
  slamon recommend --policies policies --events events.jsonl.gz --target 0.9 --out policies-next
  slamon backtest --policies policies --candidate policies-next --events events.jsonl.gz

The table shows, per process and node, the runs and the share within commitment (normal) under each set, the
crossings per day of events and their change, and how many runs end in another state. Exit status: 0 on success,
2 on unusable arguments, policies or events."""


HELP = "replay the same events under two policy directories and compare"
DESCRIPTION = (
    "Replay one log of events under the current and a candidate policy directory and show what changes: "
    "attainment, warnings and the state of every run.")


def register(sub: Any) -> None:
    p = add_analysis(sub, "backtest", HELP, DESCRIPTION, EXAMPLE, _run, kafka=True, metavar="CURRENT",
                     policies="the policies in force")
    p.add_argument("--candidate", required=True, metavar="CANDIDATE", help="the policies to try")
    p.add_argument("--json", action="store_true", help="print one JSON document (CONTRACTS.md section 9)")


def _run(args: argparse.Namespace) -> None:
    now = now_of(args, PROG)
    current = load_or_report(args.policies, PROG, "current policies rejected")
    candidate = load_or_report(args.candidate, PROG, "candidate policies rejected")  # both sets' problems shown
    if current is None or candidate is None:
        raise Failed("policies rejected")
    items = event_items(args, PROG)
    doc, cur, cand = guarded(PROG, args.events, lambda: backtest(current, candidate, items, now))
    if args.json:
        write_output(orjson.dumps(doc) + b"\n", None, PROG)
    else:
        invalid = (cur.result["invalid"], cand.result["invalid"])
        write_output(render_backtest(doc, event_days(cur.first_at, cur.now), invalid), None, PROG)
