"""The replay (CONTRACTS.md section 5), pure: apply events in time order with event time as the clock, judge the
open runs at the end, and return the warnings, the invalid-event counts and the seven-state summary."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .engine import Engine, OrderState, Run
from .events import Event, Malformed
from .instants import format_instant
from .policies import PolicySet
from .records import warning_record
from .summary import Summary
from .vocabulary import DUPLICATE_EVENT, INTERNAL_ERROR, MALFORMED, REASONS

Item = Event | Malformed  # what a reader yields: an event, or why a line is not one


class Unsorted(Exception):
    """Raised by `replay(..., require_sorted=True)` at the first event earlier than one before it."""


class _Failed(Exception):
    """The engine failed on the item at `index` of the stream (the monitor's own fault, not the event's)."""

    def __init__(self, index: int):
        super().__init__(index)
        self.index = index


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


def replay(policies: PolicySet, items: Callable[[], Iterable[Item]], now: int | None = None,
           require_sorted: bool = False, sink_factory: Callable[[], ReplaySink] = ReplaySink) -> dict[str, Any]:
    """Apply the events of `items()` (in the order given; must be time order) and judge at `now` (default: the
    latest `at`). Each pass reports to a new `sink_factory()` (reports, backtests and recommendations keep their
    own tallies in a ReplaySink of their own; the result is built from the last pass's sink).

    An event the engine fails on (an exception: the monitor's fault) counts as `internal_error` and its order stays
    as it was before it: the pass stops there and starts again from the top with that event left out (the engine is
    deterministic, so the second pass reaches the same state without it). Normal passes pay nothing for this."""
    failed: set[int] = set()
    while True:
        try:
            return _pass(policies, items(), now, require_sorted, failed, sink_factory())
        except _Failed as exc:
            failed.add(exc.index)


def _pass(policies: PolicySet, items: Iterable[Item], now: int | None, require_sorted: bool,
          failed: set[int], sink: ReplaySink) -> dict[str, Any]:
    # `applied` holds every event id applied so far, whatever its order: a repeated one is a duplicate before it
    # reaches the engine, which need not remember each order's ids as the live monitor's does
    engine = Engine(policies, remember_event_ids=False)
    states: dict[str, OrderState] = {}
    invalid = dict.fromkeys(REASONS, 0)
    applied: set[str] = set()
    latest: int | None = None
    apply = engine.apply
    for index, item in enumerate(items):
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
        if failed and index in failed:
            invalid[INTERNAL_ERROR] += 1
            continue
        st = states.get(item.order_id)
        try:
            new, rejection = apply(st, item, sink)
        except Exception as exc:  # noqa: BLE001 - see replay(): this pass is abandoned, the next skips the event
            raise _Failed(index) from exc
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
                try:
                    engine.advance(st, judge_at, sink)
                except Exception:  # noqa: BLE001 - the monitor's fault: the order is judged as it stands
                    pass
                for run in st.runs.values():
                    sink.summary.add(st.process, run.node, run.judge(judge_at))
    warnings = [rec for _, _, rec in sorted(sink.warnings)]  # by (at, seq): seq is unique, records never compared
    return {
        "now": format_instant(judge_at) if judge_at is not None else None,
        "warnings": warnings,
        "invalid": invalid,
        "summary": sink.summary.rows(),
    }
