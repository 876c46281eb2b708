"""`slamon replay`: judge a file of events against policies, with event time as the clock (CONTRACTS.md section 5)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from ..core.instants import InstantError, parse_instant
from ..eventlog import EventFileError, replay_file
from ..tables import render_tables
from .common import Progress, load_or_report


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="judge a file of events against policies, with event time as the clock",
        description="Apply a JSON Lines or CSV file of workflow events to the policies, event time as the clock, "
        "and print the warnings, the invalid-event counts and the seven-state table per process and node.",
    )
    p.add_argument("--policies", required=True, metavar="DIR", help="policy directory (one YAML per process)")
    p.add_argument("--events", required=True, metavar="FILE", help="events: JSON Lines or CSV (may be gzipped)")
    p.add_argument("--now", metavar="RFC3339", help="instant to judge in-progress runs at (default: latest event)")
    p.add_argument("--json", action="store_true", help="print one JSON document (CONTRACTS.md section 5)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    now = None
    if args.now is not None:
        try:
            now = parse_instant(args.now)
        except InstantError as exc:
            print(f"slamon replay: --now: {exc}", file=sys.stderr)
            return 2
    policies = load_or_report(args.policies, "slamon replay")
    if policies is None:
        return 2
    if not Path(args.events).is_file():
        print(f"slamon replay: --events: no such file: {args.events}", file=sys.stderr)
        return 2
    try:
        result = replay_file(policies, args.events, now, Progress("replay") if sys.stderr.isatty() else None)
    except OSError as exc:
        print(f"slamon replay: cannot read {args.events}: {exc}", file=sys.stderr)
        return 2
    except EventFileError as exc:  # a damaged file: the whole replay is rejected, not a partial one printed
        print(f"slamon replay: --events: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    else:
        render_tables(result)
    return 0
