"""Backtests (CONTRACTS.md section 9), pure: the same events replayed under two policy sets, compared row by row
and run by run.

Two ways to get there, with the same document: two replays (`core.replay`, one per policy set) whose finished
sinks `backtest_document` compares; or `DualReplay`, one pass that decodes each event once and applies it to both
sets' engines, each with its own order states, duplicate ids and invalid counts, exactly as the replay does per
set. A `DualReplay` over the orders of one shard gives a `Comparison` that adds up with the other shards' (orders
are independent): the judging instant, the only thing the shards share, is the latest event of all of them."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .engine import Engine, OrderState, Run
from .events import Event
from .instants import format_instant, parse_instant
from .policies import PolicySet
from .replay import Item, Unsorted
from .summary import NodeTally, Summary
from .tracking import TrackingSink
from .vocabulary import (
    COMPLETED_ACCEPTABLE,
    COMPLETED_NORMAL,
    COMPLETED_WARNING,
    CROSSING_KINDS,
    DUPLICATE_EVENT,
    MALFORMED,
    REASONS,
    RESOLVED,
)

CHANGED_LISTED = 1000  # at most this many changed runs are listed

RunKey = tuple[str, str, int]  # (order_id, node, run)
RowKey = tuple[str, str]  # (process, node)
COMPLETED = frozenset((COMPLETED_NORMAL, COMPLETED_ACCEPTABLE, COMPLETED_WARNING))
Changed = tuple[str, str, int, str | None, str | None]  # (order_id, node, run, current state, candidate state)


class BacktestSink(TrackingSink):
    """The replay's summary, the crossings counted per (process, node, kind), and every run's final state."""

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[RunKey, str] = {}
        self.processes: dict[str, str] = {}  # order_id -> process, for the orders with runs
        self.crossings: dict[tuple[str, str, str], int] = {}

    def warning(self, state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> None:
        if kind != RESOLVED:
            key = (state.process, run.node, kind)
            self.crossings[key] = self.crossings.get(key, 0) + 1

    def ended(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        self.summary.add(state.process, run.node, run_state, elapsed)
        self.states[(state.order_id, run.node, run.number)] = run_state
        self.processes[state.order_id] = state.process

    def finish(self, now: int) -> None:
        """The open runs' states at `now` (the replay itself has put them in the summary)."""
        for state, run in self.open.values():
            self.states[(state.order_id, run.node, run.number)] = run.judge(now)
            self.processes[state.order_id] = state.process


@dataclass(slots=True)
class Comparison:
    """What a backtest document is made of, for some orders (all of them, or one shard's); `merge` adds another
    set of orders' comparison. Per side (current, candidate): the summary, the crossings, the invalid counts."""

    summaries: tuple[Summary, Summary]
    crossings: tuple[dict[tuple[str, str, str], int], dict[tuple[str, str, str], int]]
    invalid: tuple[dict[str, int], dict[str, int]]
    changed_per_row: dict[RowKey, int]
    changed: list[Changed]  # the first CHANGED_LISTED, ordered by order_id, node, run

    def merge(self, other: Comparison) -> None:
        for mine, theirs in zip(self.summaries, other.summaries, strict=True):
            merge_summary(mine, theirs)
        for mine_c, theirs_c in zip(self.crossings, other.crossings, strict=True):
            for key, n in theirs_c.items():
                mine_c[key] = mine_c.get(key, 0) + n
        for mine_i, theirs_i in zip(self.invalid, other.invalid, strict=True):
            for reason, n in theirs_i.items():
                mine_i[reason] = mine_i.get(reason, 0) + n
        for key, n in other.changed_per_row.items():
            self.changed_per_row[key] = self.changed_per_row.get(key, 0) + n
        self.changed = heapq.nsmallest(CHANGED_LISTED, [*self.changed, *other.changed])


def merge_summary(summary: Summary, other: Summary) -> None:
    """Add the runs of `other` (of other orders) to `summary`."""
    for key, theirs in other.tallies.items():
        mine = summary.tallies.get(key)
        if mine is None:
            mine = summary.tallies[key] = NodeTally()
        for state, n in theirs.counts.items():
            mine.counts[state] += n
        mine.durations.extend(theirs.durations)


def compare(current: BacktestSink, candidate: BacktestSink, invalid: tuple[dict[str, int], dict[str, int]]
            ) -> Comparison:
    """The comparison of two finished sinks (of the same events and orders)."""
    return _compare((current.summary, candidate.summary), (current.crossings, candidate.crossings),
                    (current.states, candidate.states), {**candidate.processes, **current.processes}.__getitem__,
                    invalid)


def _compare(summaries: tuple[Summary, Summary], crossings: tuple[dict[tuple[str, str, str], int], ...],
             states: tuple[dict[RunKey, str], dict[RunKey, str]], process_of: Any,
             invalid: tuple[dict[str, int], dict[str, int]]) -> Comparison:
    a, b = states
    keys = [key for key, state in a.items() if b.get(key) != state]
    keys.extend(key for key in b if key not in a)
    per_row: dict[RowKey, int] = {}
    for order_id, node, _ in keys:
        row = (process_of(order_id), node)
        per_row[row] = per_row.get(row, 0) + 1
    listed = [(o, n, r, a.get((o, n, r)), b.get((o, n, r))) for o, n, r in heapq.nsmallest(CHANGED_LISTED, keys)]
    return Comparison(summaries, (crossings[0], crossings[1]), (dict(invalid[0]), dict(invalid[1])), per_row, listed)


def _crossings(crossings: dict[tuple[str, str, str], int], process: str, node: str) -> dict[str, int]:
    return {kind: crossings.get((process, node, kind), 0) for kind in CROSSING_KINDS}


def comparison_document(now: int | None, comparison: Comparison,
                        summaries: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
                        ) -> dict[str, Any]:
    """The backtest of section 9 (`--json`); the summary rows are the comparison's unless given."""
    c = comparison
    rows_pair = summaries if summaries is not None else (c.summaries[0].rows(), c.summaries[1].rows())
    sides = [{(r["process"], r["node"]): {k: v for k, v in r.items() if k not in ("process", "node")}
              for r in rows} for rows in rows_pair]
    rows = [
        {"process": process, "node": node,
         "current": sides[0].get((process, node)), "candidate": sides[1].get((process, node)),
         "warnings": {"current": _crossings(c.crossings[0], process, node),
                      "candidate": _crossings(c.crossings[1], process, node)},
         "changed_runs": c.changed_per_row.get((process, node), 0)}
        for process, node in sorted(sides[0].keys() | sides[1].keys())
    ]
    return {
        "now": None if now is None else format_instant(now),
        "rows": rows,
        "changed": [{"order_id": order_id, "node": node, "run": run, "current": before, "candidate": after}
                    for order_id, node, run, before, after in c.changed],
    }


def backtest_document(now: int | None, current: tuple[dict[str, Any], BacktestSink],
                      candidate: tuple[dict[str, Any], BacktestSink]) -> dict[str, Any]:
    """The backtest of section 9 (`--json`) from the two replays' results and finished sinks."""
    (cur_result, cur), (cand_result, cand) = current, candidate
    comparison = compare(cur, cand, (cur_result["invalid"], cand_result["invalid"]))
    return comparison_document(now, comparison, (cur_result["summary"], cand_result["summary"]))


class EngineFailed(Exception):
    """The engine raised on an event (the monitor's fault). A DualReplay does not redo the pass without it as the
    replay does: the caller falls back to two replays, which do."""


class _DualSink:
    """What a side of a DualReplay keeps (the engine's Sink): the summary, the crossings per (process, node, kind)
    and every ended run's state. The open runs are found in the order states when they are judged."""

    __slots__ = ("crossings", "states", "summary", "tallies")

    def __init__(self) -> None:
        self.summary = Summary()
        self.tallies = self.summary.tallies
        self.states: dict[RunKey, str] = {}
        self.crossings: dict[tuple[str, str, str], int] = {}

    def run_started(self, state: OrderState, run: Run) -> None:
        pass

    def warning(self, state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> None:
        if kind != RESOLVED:
            key = (state.process, run.node, kind)
            self.crossings[key] = self.crossings.get(key, 0) + 1

    def outcome(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        node = run.node
        self.states[(state.order_id, node, run.number)] = run_state
        # Summary.add, inlined (once per run)
        tally = self.tallies.get((state.process, node))
        if tally is None:
            tally = self.tallies[state.process, node] = NodeTally()
        tally.counts[run_state] += 1
        if run_state in COMPLETED:
            tally.durations.append(elapsed)


class _Side:
    __slots__ = ("applied", "engine", "invalid", "sink", "states")

    def __init__(self, policies: PolicySet):
        # the pass keeps the applied ids of all orders itself (as the replay): the engine need not keep an order's
        self.engine = Engine(policies, remember_event_ids=False)
        self.states: dict[str, OrderState] = {}
        self.applied: set[str] = set()  # event ids applied (a repeated one is a duplicate, whatever its order)
        self.invalid = dict.fromkeys(REASONS, 0)
        self.sink = _DualSink()


class DualReplay:
    """Both policy sets' replays in one pass: `apply` the events (in time order; raises Unsorted at the first that
    is not, EngineFailed when an engine raises), then `judge` the open runs at the judging instant (`now`, or the
    latest event's time: over every shard when sharded), then `comparison()`. Each side does what
    `core.replay.replay` does with its own engine, order states, applied ids and invalid counts."""

    def __init__(self, current: PolicySet, candidate: PolicySet, now: int | None = None):
        self.sides = (_Side(current), _Side(candidate))
        self.now = now
        self.latest: int | None = None  # the latest event time seen (valid events, applied or not)
        self.first_at: int | None = None  # the earliest
        self.judged: int | None = None

    def apply(self, items: Iterable[Item]) -> None:
        a, b = self.sides
        apply_a, apply_b = a.engine.apply, b.engine.apply
        states_a, states_b, applied_a, applied_b = a.states, b.states, a.applied, b.applied
        invalid_a, invalid_b, sink_a, sink_b = a.invalid, b.invalid, a.sink, b.sink
        now, latest = self.now, self.latest
        try:
            for item in items:
                if type(item) is not Event:
                    invalid_a[MALFORMED] += 1
                    invalid_b[MALFORMED] += 1
                    continue
                at = item.at
                if latest is None:
                    latest = self.first_at = at
                elif at > latest:
                    latest = at
                elif at < latest:
                    raise Unsorted
                if now is not None and at > now:
                    continue
                event_id, order_id = item.event_id, item.order_id
                try:
                    if event_id in applied_a:
                        invalid_a[DUPLICATE_EVENT] += 1
                    else:
                        st = states_a.get(order_id)
                        new, rejection = apply_a(st, item, sink_a)  # type: ignore[arg-type]
                        if rejection is not None:
                            invalid_a[rejection.reason] += 1
                        else:
                            applied_a.add(event_id)
                            if st is None:
                                states_a[order_id] = new  # type: ignore[assignment]
                    if event_id in applied_b:
                        invalid_b[DUPLICATE_EVENT] += 1
                    else:
                        st = states_b.get(order_id)
                        new, rejection = apply_b(st, item, sink_b)  # type: ignore[arg-type]
                        if rejection is not None:
                            invalid_b[rejection.reason] += 1
                        else:
                            applied_b.add(event_id)
                            if st is None:
                                states_b[order_id] = new  # type: ignore[assignment]
                except Exception as exc:  # noqa: BLE001 - the monitor's fault: see EngineFailed
                    raise EngineFailed(item.event_id) from exc
        finally:
            self.latest = latest

    def judge(self, judge_at: int | None) -> None:
        """Judge every open run at `judge_at` (None: there were no events), as the replay does at its end."""
        if judge_at is None:
            return
        judge_at = self.judged = parse_instant(format_instant(judge_at))  # the instant the replay's result names
        for side in self.sides:
            engine, sink = side.engine, side.sink
            add, states = sink.summary.add, sink.states
            for st in side.states.values():
                if st.runs:
                    try:
                        engine.advance(st, judge_at, sink)  # type: ignore[arg-type]
                    except Exception:  # noqa: BLE001 - the monitor's fault: the order is judged as it stands
                        pass
                    for run in st.runs.values():
                        run_state = run.judge(judge_at)
                        add(st.process, run.node, run_state)
                        states[(st.order_id, run.node, run.number)] = run_state

    def comparison(self) -> Comparison:
        a, b = self.sides
        states_a, states_b = a.states, b.states

        def process_of(order_id: str) -> str:
            return (states_a.get(order_id) or states_b[order_id]).process

        return _compare((a.sink.summary, b.sink.summary), (a.sink.crossings, b.sink.crossings),
                        (a.sink.states, b.sink.states), process_of, (a.invalid, b.invalid))
