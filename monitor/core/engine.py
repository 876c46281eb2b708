"""The order state machine: node runs, pauses, crossings, outcomes.

`Engine.apply(state, event, sink)` applies one event to an order's state (first announcing the crossings due
before the event), `Engine.advance(state, now, sink)` announces the crossings with `crossed_at < now`, and
`next_deadline(state)` says when the next crossing is due. What happens is reported to a `Sink`; the state is
changed in place and serialises to compact bytes with `dump_state` / `load_state` (crossings already
announced are part of it, so they are never announced twice).

Semantics are those of CONTRACTS.md section 1-2; all instants and durations are integer microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .calendars import ALWAYS_OPEN
from .events import Event
from .policies import Limits, PolicySet
from .vocabulary import (
    CANCELLED,
    COMPLETED_BY_LEVEL,
    CROSSING_KINDS,
    DUPLICATE_EVENT,
    IN_PROGRESS_BY_LEVEL,
    IN_PROGRESS_NORMAL,
    INVALID_TRANSITION,
    NODE_CANCELLED,
    NODE_COMPLETED,
    NODE_PAUSED,
    NODE_RESUMED,
    NODE_STARTED,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_NODE,
    OUT_OF_ORDER,
    RESOLVED,
    UNKNOWN_NODE,
    UNKNOWN_PROCESS,
)

_APPROACH, _COMMIT, _TOLER, _DONE = 0, 1, 2, 3

_OPEN, _ORDER_COMPLETED, _ORDER_CANCELLED = 0, 1, 2


def level_of(elapsed: int, commitment: int, tolerance: int) -> int:
    """0 normal (e <= C), 1 acceptable (C < e <= T), 2 warning (e > T)."""
    if elapsed <= commitment:
        return 0
    return 1 if elapsed <= tolerance else 2


class Run:
    """One pass of an order through a node, with the limits and policy version it started under."""

    __slots__ = (
        "node", "number", "started_at", "segment", "attrs", "version", "commitment", "tolerance",
        "approaching", "owner", "calendar_name", "calendar", "pauses", "paused_at", "announced", "due",
    )

    def __init__(self, node: str, number: int, started_at: int, segment: str, attrs: dict | None, version: int,
                 limits: Limits, calendar_name: str | None, calendar: Any):
        self.node = node
        self.number = number
        self.started_at = started_at
        self.segment = segment
        self.attrs = attrs
        self.version = version
        self.commitment = limits.commitment
        self.tolerance = limits.tolerance
        self.approaching = limits.approaching
        self.owner = limits.owner
        self.calendar_name = calendar_name
        self.calendar = calendar
        self.pauses: tuple[tuple[int, int], ...] = ()  # closed pauses (start, end), in order
        self.paused_at: int | None = None
        # how many crossing kinds were announced (so also the index of the next one in CROSSING_KINDS)
        self.announced = _APPROACH if limits.approaching is not None else _COMMIT
        self.due: int | None = None

    def limit(self, kind_index: int) -> int:
        return (self.approaching, self.commitment, self.tolerance)[kind_index]  # type: ignore[return-value]

    def elapsed(self, t: int) -> int:
        """Working time consumed from the start up to `t`, without paused spans."""
        cal = self.calendar
        total = 0
        seg_start = self.started_at
        for ps, pe in self.pauses:
            if ps >= t:
                return total + cal.working(seg_start, t)
            total += cal.working(seg_start, ps)
            if pe >= t:
                return total
            seg_start = pe
        end = t if self.paused_at is None or self.paused_at > t else self.paused_at
        return total + cal.working(seg_start, end)

    def used_up(self, amount: int) -> int | None:
        """The crossing instant of a limit: the latest instant at which elapsed == amount, given the pauses
        known so far; None while paused with the limit not yet used up (the resume decides)."""
        cal = self.calendar
        remaining = amount
        seg_start = self.started_at
        for ps, pe in self.pauses:
            w = cal.working(seg_start, ps)
            if w > remaining:
                return cal.used_up(seg_start, remaining)
            remaining -= w
            seg_start = pe
        if self.paused_at is not None:
            if cal.working(seg_start, self.paused_at) > remaining:
                return cal.used_up(seg_start, remaining)
            return None
        return cal.used_up(seg_start, remaining)

    def schedule(self) -> None:
        """Recompute `due`, the instant of the next crossing not yet announced."""
        self.due = self.used_up(self.limit(self.announced)) if self.announced < _DONE else None

    def judge(self, now: int) -> str:
        """In-progress state at `now`."""
        return IN_PROGRESS_BY_LEVEL[level_of(self.elapsed(now), self.commitment, self.tolerance)]


class OrderState:
    """The state of one order: its open runs, run numbers, applied event ids, last event time."""

    __slots__ = ("order_id", "process", "last_at", "event_ids", "closed", "counts", "runs")

    def __init__(self, order_id: str, process: str):
        self.order_id = order_id
        self.process = process
        self.last_at: int | None = None
        self.event_ids = "\x00"  # applied event ids, each followed by NUL: compact and cheap to test
        self.closed = _OPEN
        self.counts: dict[str, int] = {}  # node -> runs started so far
        self.runs: dict[str, Run] = {}  # node -> open run (including the order-level run)

    def has_event(self, event_id: str) -> bool:
        return f"\x00{event_id}\x00" in self.event_ids

    @property
    def is_closed(self) -> bool:
        return self.closed != _OPEN

    @property
    def finished(self) -> bool:
        """Closed with no open run left: nothing can change any more."""
        return self.closed != _OPEN and not self.runs


class Sink(Protocol):
    """Receives what the engine decides. The replay aggregates it; the live monitor turns it into messages."""

    def run_started(self, state: OrderState, run: Run) -> None: ...

    def warning(self, state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> None: ...

    def outcome(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None: ...


@dataclass(slots=True, frozen=True)
class Rejection:
    reason: str  # one of vocabulary.REASONS
    detail: str


def _state_after_crossing(run: Run, kind_index: int) -> str:
    """The run's state just after a limit is crossed (`in_progress_normal` for `approaching`)."""
    if kind_index == _APPROACH:
        return IN_PROGRESS_NORMAL
    level = 2 if run.limit(kind_index) >= run.tolerance else 1
    return IN_PROGRESS_BY_LEVEL[level]


class Engine:
    """Applies events and time to order states under a policy set. Holds no order state itself."""

    def __init__(self, policies: PolicySet):
        self.policies = policies
        self._calendars: dict[str, Any] = dict(policies.calendars)

    def set_policies(self, policies: PolicySet) -> None:
        """New policies apply to runs started from now on; open runs keep their limits and calendars."""
        self.policies = policies
        self._calendars.update(policies.calendars)

    def calendar(self, name: str | None) -> Any:
        return ALWAYS_OPEN if name is None else self._calendars.get(name, ALWAYS_OPEN)

    # ------------------------------------------------------------ time

    def advance(self, state: OrderState, now: int, sink: Sink) -> None:
        """Announce every crossing with crossed_at < now, each exactly once, in order."""
        for run in state.runs.values():
            while run.due is not None and run.due < now:
                k = run.announced
                limit = run.limit(k)
                sink.warning(state, run, CROSSING_KINDS[k], _state_after_crossing(run, k), run.due, limit)
                run.announced = k + 1
                run.schedule()

    # ------------------------------------------------------------ events

    def apply(self, state: OrderState | None, ev: Event, sink: Sink) -> tuple[OrderState | None, Rejection | None]:
        """Apply one (well-formed) event. Returns the order's state (new or the same object, changed in place)
        and None, or the unchanged state and the reason the event cannot be applied."""
        if state is not None and state.has_event(ev.event_id):
            return state, Rejection(DUPLICATE_EVENT, f"event_id {ev.event_id!r} was already applied")
        policy = self.policies.get(ev.process)
        if policy is None:
            return state, Rejection(UNKNOWN_PROCESS, f"no policy for process {ev.process!r}")
        node = ev.node
        etype = ev.type
        if node is not None and (
            node == ORDER_NODE or (node not in policy.nodes and (state is None or node not in state.runs))
        ):
            return state, Rejection(UNKNOWN_NODE, f"process {ev.process!r} has no node {node!r}")
        if state is not None and state.last_at is not None and ev.at < state.last_at:
            return state, Rejection(OUT_OF_ORDER, "event is earlier than the order's last accepted event")
        problem = self._transition_problem(state, ev)
        if problem is not None:
            return state, Rejection(INVALID_TRANSITION, problem)

        if state is None:
            state = OrderState(ev.order_id, ev.process)
        at = ev.at
        self.advance(state, at, sink)
        if etype == NODE_STARTED:
            first = not state.counts
            number = state.counts.get(node, 0) + 1  # type: ignore[arg-type]
            state.counts[node] = number  # type: ignore[index]
            calendar = self.calendar(policy.calendar_name)
            run = Run(node, number, at, ev.segment, ev.attrs, policy.version, policy.limits(node, ev.segment),  # type: ignore[arg-type]
                      policy.calendar_name, calendar)
            run.schedule()
            state.runs[node] = run  # type: ignore[index]
            sink.run_started(state, run)
            if first and policy.order is not None:
                order_run = Run(ORDER_NODE, 1, at, ev.segment, ev.attrs, policy.version, policy.order,
                                policy.calendar_name, calendar)
                order_run.schedule()
                state.runs[ORDER_NODE] = order_run
                state.counts[ORDER_NODE] = 1
                sink.run_started(state, order_run)
        elif etype == NODE_COMPLETED:
            self._end(state, state.runs[node], at, False, sink)  # type: ignore[index]
        elif etype == NODE_CANCELLED:
            self._end(state, state.runs[node], at, True, sink)  # type: ignore[index]
        elif etype == NODE_PAUSED:
            run = state.runs[node]  # type: ignore[index]
            run.paused_at = at
            run.schedule()
        elif etype == NODE_RESUMED:
            run = state.runs[node]  # type: ignore[index]
            run.pauses = (*run.pauses, (run.paused_at, at))  # type: ignore[assignment]
            run.paused_at = None
            run.schedule()
        elif etype == ORDER_COMPLETED:
            state.closed = _ORDER_COMPLETED
            order_run = state.runs.get(ORDER_NODE)
            if order_run is not None:
                self._end(state, order_run, at, False, sink)
        else:  # ORDER_CANCELLED
            state.closed = _ORDER_CANCELLED
            for run in list(state.runs.values()):
                self._end(state, run, at, True, sink)
        state.last_at = at
        state.event_ids += ev.event_id + "\x00"
        return state, None

    @staticmethod
    def _transition_problem(state: OrderState | None, ev: Event) -> str | None:
        etype = ev.type
        if state is not None:
            if state.closed:
                word = "completed" if state.closed == _ORDER_COMPLETED else "cancelled"
                return f"order {ev.order_id!r} is already {word}"
            if state.process != ev.process:
                return f"order {ev.order_id!r} belongs to process {state.process!r}, not {ev.process!r}"
        run = state.runs.get(ev.node) if state is not None and ev.node is not None else None  # type: ignore[arg-type]
        if etype == NODE_STARTED:
            return f"node {ev.node!r} already has an open run" if run is not None else None
        if etype in (ORDER_COMPLETED, ORDER_CANCELLED):
            return None
        if run is None:
            return f"node {ev.node!r} has no open run"
        if etype == NODE_PAUSED and run.paused_at is not None:
            return f"node {ev.node!r} is already paused"
        if etype == NODE_RESUMED and run.paused_at is None:
            return f"node {ev.node!r} is not paused"
        return None

    def _end(self, state: OrderState, run: Run, at: int, cancelled: bool, sink: Sink) -> None:
        del state.runs[run.node]
        elapsed = run.elapsed(at)
        if cancelled:
            final = CANCELLED
        else:
            final = COMPLETED_BY_LEVEL[level_of(elapsed, run.commitment, run.tolerance)]
        sink.outcome(state, run, final, at, elapsed)
        if run.announced > _COMMIT:  # commitment_breached was announced
            sink.warning(state, run, RESOLVED, final, at, elapsed)


def announced_level(announced: int) -> int:
    """The level announced for an open run whose first `announced` crossing kinds were announced
    (`Run.announced`): 0 normal, 1 acceptable, 2 warning."""
    if announced <= _COMMIT:
        return 0
    return 1 if announced == _TOLER else 2


def next_deadline(state: OrderState) -> int | None:
    """The earliest instant at which a crossing of this order is due (None: nothing can cross now)."""
    best = None
    for run in state.runs.values():
        if run.due is not None and (best is None or run.due < best):
            best = run.due
    return best


# ---------------------------------------------------------------- compact serialisation

_FORMAT = 1


def dump_state(state: OrderState) -> bytes:
    runs = [
        [r.node, r.number, r.started_at, r.segment, r.attrs, r.version, r.commitment, r.tolerance, r.approaching,
         r.owner, r.calendar_name, [x for p in r.pauses for x in p], r.paused_at, r.announced, r.due]
        for r in state.runs.values()
    ]
    return orjson.dumps(
        [_FORMAT, state.order_id, state.process, state.last_at, state.event_ids, state.closed, state.counts, runs]
    )


def load_state(data: bytes, engine: Engine) -> OrderState:
    fmt, order_id, process, last_at, event_ids, closed, counts, runs = orjson.loads(data)
    if fmt != _FORMAT:
        raise ValueError(f"unknown order state format {fmt}")
    state = OrderState(order_id, process)
    state.last_at = last_at
    state.event_ids = event_ids
    state.closed = closed
    state.counts = counts
    for (node, number, started_at, segment, attrs, version, c, t, a, owner, cal_name, flat_pauses, paused_at,
         announced, due) in runs:
        run = Run(node, number, started_at, segment, attrs, version, Limits(c, t, a, owner), cal_name,
                  engine.calendar(cal_name))
        run.pauses = tuple(zip(flat_pauses[::2], flat_pauses[1::2], strict=True))
        run.paused_at = paused_at
        run.announced = announced
        run.due = due
        state.runs[node] = run
    return state
