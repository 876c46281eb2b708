"""Backtests (CONTRACTS.md section 9), pure: the same events replayed under two policy sets, compared row by row
and run by run."""

from __future__ import annotations

from typing import Any

from .engine import OrderState, Run
from .instants import format_instant
from .tracking import TrackingSink
from .vocabulary import CROSSING_KINDS, RESOLVED

CHANGED_LISTED = 1000  # at most this many changed runs are listed

RunKey = tuple[str, str, int]  # (order_id, node, run)


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


def _crossings(sink: BacktestSink, process: str, node: str) -> dict[str, int]:
    return {kind: sink.crossings.get((process, node, kind), 0) for kind in CROSSING_KINDS}


def changed_runs(current: BacktestSink, candidate: BacktestSink) -> list[RunKey]:
    """The runs whose state differs (or that exist on one side only), ordered by order_id, node, run."""
    a, b = current.states, candidate.states
    changed = [key for key, state in a.items() if b.get(key) != state]
    changed.extend(key for key in b if key not in a)
    changed.sort()
    return changed


def backtest_document(now: int | None, current: tuple[dict[str, Any], BacktestSink],
                      candidate: tuple[dict[str, Any], BacktestSink]) -> dict[str, Any]:
    """The backtest of section 9 (`--json`) from the two replays' results and finished sinks."""
    (cur_result, cur), (cand_result, cand) = current, candidate
    sides = []
    for result in (cur_result, cand_result):
        sides.append({(r["process"], r["node"]): {k: v for k, v in r.items() if k not in ("process", "node")}
                      for r in result["summary"]})
    changed = changed_runs(cur, cand)
    processes = {**cand.processes, **cur.processes}
    per_row: dict[tuple[str, str], int] = {}
    for order_id, node, _ in changed:
        key = (processes[order_id], node)
        per_row[key] = per_row.get(key, 0) + 1
    rows = [
        {"process": process, "node": node,
         "current": sides[0].get((process, node)), "candidate": sides[1].get((process, node)),
         "warnings": {"current": _crossings(cur, process, node), "candidate": _crossings(cand, process, node)},
         "changed_runs": per_row.get((process, node), 0)}
        for process, node in sorted(sides[0].keys() | sides[1].keys())
    ]
    return {
        "now": None if now is None else format_instant(now),
        "rows": rows,
        "changed": [{"order_id": order_id, "node": node, "run": run,
                     "current": cur.states.get((order_id, node, run)),
                     "candidate": cand.states.get((order_id, node, run))}
                    for order_id, node, run in changed[:CHANGED_LISTED]],
    }
