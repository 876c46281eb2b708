"""`slamon replay`: drive the core from a file of events, with event time as the clock (CONTRACTS.md section 5).

The file is read once, applying events as they come, as long as their times never go backwards (the usual
case: logs are written in time order). If an event is earlier than one before it, the replay starts again
from the top with all events sorted by time (stable), so the result is always that of time order.
"""

from __future__ import annotations

import argparse
import csv
import gc
import gzip
import io
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .core.engine import STATES, Engine, OrderState, Run
from .core.events import (
    DUPLICATE_EVENT,
    MALFORMED,
    REASONS,
    Event,
    Malformed,
    decode_event,
    event_from_object,
)
from .core.instants import InstantError, format_instant, parse_instant
from .core.policies import PolicySet
from .core.records import warning_record
from .core.summary import Summary
from .policy_cli import load_or_report


class _Unsorted(Exception):
    pass


class ReplaySink:
    """Collects warnings and tallies ended runs."""

    def __init__(self) -> None:
        self.warnings: list[tuple[int, int, dict[str, Any]]] = []
        self.summary = Summary()

    def run_started(self, state: OrderState, run: Run) -> None:
        pass

    def warning(self, state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> None:
        self.warnings.append((at, len(self.warnings), warning_record(state, run, kind, run_state, at, elapsed)))

    def outcome(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        self.summary.add(state.process, run.node, run_state, elapsed)


# ---------------------------------------------------------------- input


def _open_binary(path: str) -> tuple[BinaryIO, BinaryIO, int]:
    """(stream to read, raw file for progress, total raw bytes); gzip is recognised by its magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    size = os.fstat(raw.fileno()).st_size
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw), raw, size  # type: ignore[return-value]
    return raw, raw, size


def _is_csv(path: str, first_line: bytes) -> bool:
    name = path.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return True
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return False
    stripped = first_line.lstrip()
    return not stripped.startswith((b"{", b"[", b'"')) and b"event_id" in stripped and b"," in stripped


Item = Event | Malformed


def read_events(path: str, progress: Progress | None = None) -> Iterator[Item]:
    """Events of a JSON Lines or CSV file, each an Event or a Malformed (with the reason)."""
    stream, raw, size = _open_binary(path)
    with raw, stream:
        buffered = io.BufferedReader(stream) if not hasattr(stream, "peek") else stream
        if buffered.peek(3)[:3] == b"\xef\xbb\xbf":  # type: ignore[union-attr]
            buffered.read(3)  # a UTF-8 byte order mark (spreadsheet exports write one): not part of the data
        first = buffered.peek(4096).split(b"\n", 1)[0]  # type: ignore[union-attr]
        lines: Iterable[bytes] = buffered
        if _is_csv(path, first):
            yield from _csv_events(io.TextIOWrapper(buffered, encoding="utf-8", newline=""), progress, raw, size)
            return
        for n, line in enumerate(lines):
            if progress is not None and n % 50_000 == 0:
                progress.update(raw.tell(), size)
            if not line.strip():
                continue
            try:
                yield decode_event(line)
            except Malformed as exc:
                yield exc


def _csv_events(text: io.TextIOWrapper, progress: Progress | None, raw: BinaryIO, size: int) -> Iterator[Item]:
    reader = csv.DictReader(text)
    for n, row in enumerate(reader):
        if progress is not None and n % 50_000 == 0:
            progress.update(raw.tell(), size)
        if None in row:  # more cells than header names
            yield Malformed("more cells than the header has names")
            continue
        obj = {k: v for k, v in row.items() if v not in ("", None) and k != "attrs"}
        if not obj:
            continue
        try:
            yield event_from_object(obj)
        except Malformed as exc:
            yield exc


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str):
        self.label = label
        self.last = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 or not total:
            return
        self.last = now
        share = min(done / total, 1.0)
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {share:6.1%}")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\r" + " " * 60 + "\r")
        sys.stderr.flush()


# ---------------------------------------------------------------- the replay


def replay(policies: PolicySet, items: Iterable[Item], now: int | None = None,
           require_sorted: bool = False) -> dict[str, Any]:
    """Apply events (in the order given; must be time order) and judge at `now` (default: the latest `at`)."""
    engine = Engine(policies)
    sink = ReplaySink()
    states: dict[str, OrderState] = {}
    invalid = dict.fromkeys(REASONS, 0)
    applied: set[str] = set()  # event ids applied so far: a repeated one is a duplicate, whatever its order
    latest: int | None = None
    apply = engine.apply
    for item in items:
        if type(item) is not Event:
            invalid[MALFORMED] += 1
            continue
        at = item.at
        if latest is None or at > latest:
            latest = at
        elif require_sorted and at < latest:
            raise _Unsorted
        if now is not None and at > now:
            continue
        if item.event_id in applied:  # an id applied in any order (the engine itself knows the order's own)
            invalid[DUPLICATE_EVENT] += 1
            continue
        st = states.get(item.order_id)
        new, rejection = apply(st, item, sink)
        if rejection is not None:
            invalid[rejection.reason] += 1
            continue
        applied.add(item.event_id)
        if st is None:
            states[item.order_id] = new  # type: ignore[assignment]
    judge_at = now if now is not None else latest
    if judge_at is not None:
        for st in states.values():
            if st.runs:
                engine.advance(st, judge_at, sink)
                for run in st.runs.values():
                    sink.summary.add(st.process, run.node, run.judge(judge_at))
    warnings = [rec for _, _, rec in sorted(sink.warnings, key=lambda w: (w[0], w[1]))]
    return {
        "now": format_instant(judge_at) if judge_at is not None else None,
        "warnings": warnings,
        "invalid": invalid,
        "summary": sink.summary.rows(),
    }


def replay_file(policies: PolicySet, path: str, now: int | None = None, show_progress: bool = False) -> dict[str, Any]:
    progress = Progress("replay") if show_progress else None
    # A replay builds millions of small objects and no reference cycles: the cyclic collector would rescan the
    # growing heap again and again for nothing (a fifth of the run time on a million events).
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            return replay(policies, read_events(path, progress), now, require_sorted=True)
        except _Unsorted:
            items = list(read_events(path, progress))
            events = sorted((i for i in items if type(i) is Event), key=lambda e: e.at)  # stable
            malformed = [i for i in items if type(i) is not Event]
            return replay(policies, [*malformed, *events], now)
    finally:
        if collecting:
            gc.enable()
        if progress is not None:
            progress.done()


# ---------------------------------------------------------------- output


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


# ---------------------------------------------------------------- CLI


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
        result = replay_file(policies, args.events, now, show_progress=sys.stderr.isatty())
    except OSError as exc:
        print(f"slamon replay: cannot read {args.events}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    else:
        render_tables(result)
    return 0
