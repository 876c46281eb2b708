"""`slamon backtest`: the same events under two policy directories, side by side (CONTRACTS.md section 9).

The events are replayed once for both policy sets (`core.backtest.DualReplay`: each event decoded once, applied
to both sets' engines), split by order over one process per core: each process reads the whole file but decodes
and applies only the events of its own orders (a hash of `order_id`), then the processes agree on the judging
instant (the latest event of all), judge their open runs and add up their comparisons. Orders are independent,
so this is the two replays' result; when it cannot be (events out of time order, an event id applied in two
processes' orders, an engine failure, no `fork`), the backtest is two replays (`reports.analyses.backtest`)."""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zlib import crc32

import orjson

from ..core.backtest import DualReplay, EngineFailed, comparison_document
from ..core.policies import PolicySet
from ..core.replay import Item, Unsorted
from ..eventlog import Progress, of_orders, read_events
from ..reports.analyses import Items, backtest
from ..reports.text import event_days, render_backtest
from .common import load_or_report
from .eventsource import add_analysis, event_items, guarded, now_of, progress_bar, write_output
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

MAX_SHARDS = 8
ShardItems = Callable[[int, int], Iterable[Item]]  # (shard, shards) -> the items of that shard's orders


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
    if getattr(args, "from_kafka", False):
        shard_items = items_by_shard(items)
    else:
        shard_items = file_by_shard(args.events, progress_bar(PROG.removeprefix("slamon ")))
    done = guarded(PROG, args.events, lambda: run_backtest(current, candidate, items, shard_items, now))
    if args.json:
        write_output(orjson.dumps(done.doc) + b"\n", None, PROG)
    else:
        write_output(render_backtest(done.doc, event_days(done.first_at, done.now), done.invalid), None, PROG)


@dataclass(slots=True)
class Backtested:
    doc: dict[str, Any]  # the document of section 9
    invalid: tuple[dict[str, int], dict[str, int]]  # each side's invalid-event counts
    first_at: int | None  # the earliest event
    now: int | None  # the judging instant


def default_shards() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_SHARDS))


def run_backtest(current: PolicySet, candidate: PolicySet, items: Items, shard_items: ShardItems,
                 now: int | None = None, shards: int | None = None) -> Backtested:
    """The backtest of section 9: in `shards` processes (default: one per core) when possible, otherwise (see the
    module's doc) two replays of `items()`."""
    shards = default_shards() if shards is None else shards
    if shards > 1 and "fork" not in multiprocessing.get_all_start_methods():
        shards = 1
    done = _sharded(current, candidate, shard_items, now, shards)
    if done is not None:
        return done
    doc, cur, cand = backtest(current, candidate, items, now)
    return Backtested(doc, (cur.result["invalid"], cand.result["invalid"]), cur.first_at, cur.now)


_ABORT = "abort"


def _sharded(current: PolicySet, candidate: PolicySet, shard_items: ShardItems, now: int | None,
             shards: int) -> Backtested | None:
    collecting = gc.isenabled()
    gc.disable()  # millions of small objects and no cycles (see eventlog.replay_source); inherited by the children
    children: list[tuple[Any, Any]] = []
    try:
        context = multiprocessing.get_context("fork") if shards > 1 else None
        for shard in range(1, shards):
            mine, theirs = context.Pipe()  # type: ignore[union-attr]
            process = context.Process(  # type: ignore[union-attr]
                target=_child, args=(theirs, current, candidate, shard_items, now, shard, shards), daemon=True)
            process.start()
            theirs.close()
            children.append((process, mine))
        dual = DualReplay(current, candidate, now)
        ok = _apply(dual, shard_items(0, shards))
        reports = [_receive(process, conn) for process, conn in children]
        if not ok or any(r[0] != "applied" for r in reports):
            for (_, conn), report in zip(children, reports, strict=True):
                if report[0] == "applied":  # (the others have ended)
                    conn.send(_ABORT)
            return None
        latest = [t for t in (dual.latest, *(r[1] for r in reports)) if t is not None]
        judge_at = now if now is not None else max(latest, default=None)
        # each child looks for the ids it applied among those applied by the shards before it (see _child)
        applied = [_applied_hashes(dual) if children else None, *(r[3] for r in reports)]
        for shard, (_, conn) in enumerate(children, 1):
            conn.send((judge_at, applied[:shard]))
        dual.judge(judge_at)
        comparison = dual.comparison()
        overlap = False
        for process, conn in children:
            _, theirs, overlaps = _receive(process, conn)
            overlap = overlap or overlaps
            comparison.merge(theirs)
        if overlap:
            return None
        firsts = [t for t in (dual.first_at, *(r[2] for r in reports)) if t is not None]
        judged = dual.judged
        return Backtested(comparison_document(judged, comparison), comparison.invalid, min(firsts, default=None),
                          judged)
    finally:
        for process, conn in children:
            if process.is_alive():
                process.kill()
            process.join()
            conn.close()
        if collecting:
            gc.enable()


def _apply(dual: DualReplay, items: Iterable[Item]) -> bool:
    """Apply the items; False when the result would not be the replay's (see the module's doc)."""
    try:
        dual.apply(items)
    except (Unsorted, EngineFailed):
        return False
    return True


def _applied_hashes(dual: DualReplay) -> list[array]:
    return [array("q", map(hash, side.applied)) for side in dual.sides]


def _overlaps(dual: DualReplay, others: list[list[array]]) -> bool:
    """Whether an id this shard applied was applied on the same side by another shard (compared by hash: a
    collision only costs the fallback): the replay would have counted the later one a duplicate."""
    for side, mine in enumerate(dual.sides):
        if others:
            ids = set(map(hash, mine.applied))  # (str hashes: the same in forked processes)
            if any(not ids.isdisjoint(theirs[side]) for theirs in others):
                return True
    return False


def _receive(process: Any, conn: Any) -> Any:
    try:
        message = conn.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"the backtest process {process.pid} ended without a result "
                           f"(exit status {process.exitcode})") from None
    if message[0] == "error":
        raise message[1]
    return message


def _child(conn: Any, current: PolicySet, candidate: PolicySet, shard_items: ShardItems, now: int | None,
           shard: int, shards: int) -> None:
    """One shard in a forked process: apply; report the latest and first event times (and the hashes of the ids
    applied, for the shards after it); receive the judging instant and the ids applied by the shards before it;
    judge, compare, and send the comparison and whether an id was applied in two shards. It writes nothing to
    stderr (the parent shows the progress and the errors of the same input)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    try:
        dual = DualReplay(current, candidate, now)
        if not _apply(dual, shard_items(shard, shards)):
            conn.send(("fallback",))
            return
        conn.send(("applied", dual.latest, dual.first_at, _applied_hashes(dual) if shard < shards - 1 else None))
        message = conn.recv()
        if message == _ABORT:
            return
        judge_at, before = message
        dual.judge(judge_at)
        conn.send(("compared", dual.comparison(), _overlaps(dual, before)))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        conn.send(("error", exc))


def in_shard(shard: int, shards: int) -> Callable[[bytes | None], bool]:
    """Whether an order_id (UTF-8 bytes; None: a line without one, which shard 0 takes) belongs to `shard`."""
    return lambda key: (0 if key is None else crc32(key) % shards) == shard


def items_by_shard(items: Items) -> ShardItems:
    """Any source of items, split by order: each shard goes through every item (decoded already)."""

    def shard_items(shard: int, shards: int) -> Iterator[Item]:
        return iter(items()) if shards == 1 else of_orders(items(), in_shard(shard, shards))

    return shard_items


def file_by_shard(path: str, progress: Progress | None = None) -> ShardItems:
    """The events of a file (as `eventlog.read_events` reads them), split by order: a JSON Lines line is decoded
    only by the shard of its `order_id` (found in the raw line); a line without one (malformed) goes to shard 0.
    CSV files are decoded whole by every shard. Shard 0 shows the progress."""

    def shard_items(shard: int, shards: int) -> Iterator[Item]:
        shown = progress if shard == 0 else None
        try:
            yield from _file_shard(path, shard, shards, shown)
        finally:
            if shown is not None:
                shown.done()

    return shard_items


def _file_shard(path: str, shard: int, shards: int, progress: Progress | None) -> Iterator[Item]:
    if shards == 1:
        return read_events(path, progress)
    return read_events(path, progress, in_shard(shard, shards))
