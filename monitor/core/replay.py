"""The replay (CONTRACTS.md section 5), pure: apply events in time order with event time as the clock, judge the
open runs at the end, and return the warnings, the invalid-event counts and the seven-state summary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .engine import Engine, OrderState, Run
from .events import Event, Malformed
from .instants import format_instant
from .policies import PolicySet
from .records import warning_record
from .summary import Summary
from .vocabulary import DUPLICATE_EVENT, MALFORMED, REASONS

Item = Event | Malformed  # what a reader yields: an event, or why a line is not one


class Unsorted(Exception):
    """Raised by `replay(..., require_sorted=True)` at the first event earlier than one before it."""


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
            raise Unsorted
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
