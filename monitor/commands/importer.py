"""`slamon import xes`: an IEEE XES process-mining log as workflow events (CONTRACTS.md section 11)."""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from ..importers.xes import MODES, XesError, import_xes
from .framing import add_command, fail

PROG = "slamon import xes"
EXAMPLE = """examples:
  slamon import xes BPI_Challenge_2017.xes.gz --process loan_application --out events.jsonl.gz
  slamon import xes tickets.xes --mode sojourn --out tickets.jsonl      # a log of status changes
  slamon replay --policies policies --events events.jsonl.gz

Lifecycle transitions: start -> node_started, complete -> node_completed, suspend -> node_paused,
resume -> node_resumed, ate_abort / pi_abort -> node_cancelled; others are skipped and counted. A time without
an offset is read as UTC. The summary (traces, events written, skipped by reason) goes to stderr as JSON.
Exit status: 0 on success, 2 when the file is not a readable XES log (nothing is written then)."""


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="import process-mining logs as workflow events",
                       description="Turn process-mining event logs into workflow events (JSON Lines).",
                       epilog="example:\n  slamon import xes BPI_Challenge_2017.xes.gz --process loan_application "
                       "--out events.jsonl.gz\n(slamon import xes --help for the mapping)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    formats = p.add_subparsers(dest="import_format", metavar="FORMAT")
    formats.required = True
    xes = add_command(
        formats, "xes", "an IEEE XES log (.xes or .xes.gz)",
        "Read an IEEE XES event log (plain or gzip, streamed) and write JSON Lines workflow events ordered by time: "
        "trace concept:name -> order_id, event concept:name -> node, lifecycle:transition -> type, time:timestamp "
        "-> at, the other event attributes -> attrs.", EXAMPLE, _run)
    xes.add_argument("file", metavar="FILE", help="the XES log (.xes, .xes.gz)")
    xes.add_argument("--process", metavar="NAME", help="process name (default: the log's concept:name, else the "
                     "file name without extensions)")
    xes.add_argument("--mode", choices=MODES, default="lifecycle",
                     help="lifecycle: runs from lifecycle transitions (default); sojourn: each event of a trace "
                     "starts a run of its activity that the next event ends (logs of status changes)")
    xes.add_argument("--instant-as-run", action="store_true", help="an event without lifecycle transition "
                     "becomes a run of no time (node_started and node_completed) instead of being skipped")
    xes.add_argument("--out", metavar="FILE", help="write to FILE (gzip when it ends with .gz) instead of stdout")


def _run(args: argparse.Namespace) -> None:
    if not Path(args.file).is_file():
        raise fail(PROG, f"no such file: {args.file}")
    try:
        if args.out is None:
            summary = import_xes(args.file, sys.stdout.buffer, args.process, args.mode, args.instant_as_run)
            sys.stdout.flush()
        else:
            summary = _to_file(args)
    except XesError as exc:
        raise fail(PROG, str(exc)) from None
    except OSError as exc:
        raise fail(PROG, f"{exc.filename or args.file}: {exc.strerror or exc}") from None
    sys.stderr.write(orjson.dumps(summary.as_dict()).decode() + "\n")


def _to_file(args: argparse.Namespace) -> Any:
    """Import into a temporary file next to --out, moved into place only when the whole log was read."""
    target = Path(args.out)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.resolve().parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            if target.name.endswith(".gz"):
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
                    summary = import_xes(args.file, out, args.process, args.mode, args.instant_as_run)
            else:
                summary = import_xes(args.file, raw, args.process, args.mode, args.instant_as_run)
        os.replace(tmp, target)
        return summary
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
