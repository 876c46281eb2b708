"""`slamon recommend`: commitments and tolerances that the measured runs would have kept at a target rate
(CONTRACTS.md section 10), optionally written out as a new policy directory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..core.durations import DurationError, parse_duration
from ..core.policies import PolicyError
from ..core.recommend import default_tolerance_target
from ..reports.analyses import recommend
from ..reports.text import render_recommend
from .eventsource import add_analysis, event_items, guarded, now_of, policies_of, write_output
from .framing import fail

PROG = "slamon recommend"
EXAMPLE = """example (limits the BPIC 2017 work items kept 90 % / 97.5 % of the time, to the minute):
  slamon recommend --policies ../shared/datasets/bpic2017-workitems/policies \\
                   --events ../shared/datasets/bpic2017-workitems/events.jsonl.gz --target 0.9 --out policies-next
  slamon policy check policies-next

Attainment of a limit L = completed runs within L / (completed runs + runs open at --now already beyond L);
cancelled runs and open runs still within L are left out. Exit status: 0 on success, 2 on unusable arguments,
policies or events."""


HELP = "recommend commitments and tolerances from measured runs"
DESCRIPTION = (
    "Measure every run's elapsed working time (as the replay does) and recommend, per process and node, the "
    "smallest multiple of --granularity whose attainment reaches --target (the commitment) and "
    "--tolerance-target (the tolerance).")


def register(sub: Any) -> None:
    p = add_analysis(sub, "recommend", HELP, DESCRIPTION, EXAMPLE, _run, kafka=False,
                     policies="policy directory (the limits in force)")
    p.add_argument("--target", required=True, type=float, help="share of runs to keep within the commitment (0-1]")
    p.add_argument("--tolerance-target", type=float, help="share within the tolerance (default: 1 - (1 - target)/4)")
    p.add_argument("--granularity", default="1m", help="limits are multiples of this duration (default 1m)")
    p.add_argument("--min-runs", type=int, default=30, help="fewer completed and open runs: skipped (default 30)")
    p.add_argument("--by-segment", action="store_true", help="one recommendation per segment as well")
    p.add_argument("--json", action="store_true", help="print one JSON document (CONTRACTS.md section 10)")
    p.add_argument("--out", metavar="DIR", help="write a complete policy directory with the recommended limits "
                   "(a new or empty directory)")


def _share(value: float, flag: str) -> float:
    if not 0 < value <= 1:
        raise fail(PROG, f"{flag}: expected a share between 0 (exclusive) and 1, got {value}")
    return value


def _run(args: argparse.Namespace) -> None:
    now = now_of(args, PROG)
    target = _share(args.target, "--target")
    tolerance_target = _share(args.tolerance_target if args.tolerance_target is not None
                              else default_tolerance_target(target), "--tolerance-target")
    try:
        granularity = parse_duration(args.granularity)
    except DurationError as exc:
        raise fail(PROG, f"--granularity: {exc}") from None
    if granularity <= 0:
        raise fail(PROG, "--granularity: must be positive")
    if args.min_runs < 0:
        raise fail(PROG, "--min-runs: must not be negative")
    policies = policies_of(args.policies, PROG)
    items = event_items(args, PROG)
    doc = guarded(PROG, args.events, lambda: recommend(policies, items, target, tolerance_target, granularity,
                                                       args.min_runs, args.by_segment, now))
    if args.out is not None:
        _write(args, policies, doc)
    write_output(orjson.dumps(doc) + b"\n" if args.json else render_recommend(doc), None, PROG)


def _write(args: argparse.Namespace, policies: Any, doc: dict[str, Any]) -> None:
    from ..reports.policy_out import OutError, write_policy_dir

    try:
        changed = write_policy_dir(args.policies, args.out, policies, doc["rows"])
    except OutError as exc:
        raise fail(PROG, f"--out: {exc}") from None
    except PolicyError as exc:  # the written set would not load: nothing was written
        raise fail(PROG, f"--out: the recommended policies would be rejected, nothing written:\n{exc}") from None
    print(f"{PROG}: wrote {args.out} ({', '.join(changed) or 'no limit'} changed)", file=sys.stderr)
