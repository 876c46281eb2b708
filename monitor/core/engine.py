"""The order state machine: node runs, pauses, status changes, crossings, outcomes.

`Engine.apply(state, event, sink)` applies one event to an order's state (first announcing the crossings due
before the event), `Engine.advance(state, now, sink)` announces the crossings with `crossed_at < now`, and
`next_deadline(state)` says when the next crossing is due. What happens is reported to a `Sink`; the state is
changed in place and serialises to compact bytes with `dump_state` / `load_state` (crossings already
announced are part of it, so they are never announced twice).

Semantics are those of CONTRACTS.md sections 1, 2 and 12; all instants and durations are integer microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .calendars import ALWAYS_OPEN
from .codec import dump_state, load_state
from .events import Event
from .policies import Policy, PolicySet
from .runs import (
    CLOSED_CANCELLED,
    CLOSED_COMPLETED,
    COMMIT,
    OrderState,
    Run,
    announced_level,
    level_of,
    next_deadline,
)
from .statuses import END, PAUSE, StatusTarget, status_problem
from .vocabulary import (
    APPROACHING,
    CANCELLED,
    COMPLETED_BY_LEVEL,
    CROSSING_KINDS,
    DUPLICATE_EVENT,
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
    STATUS_CHANGED,
    UNKNOWN_NODE,
    UNKNOWN_PROCESS,
)

__all__ = ["Engine", "OrderState", "Rejection", "Run", "Sink", "announced_level", "dump_state", "level_of",
           "load_state", "next_deadline"]


class Sink(Protocol):
    """Receives what the engine decides. The replay aggregates it; the live monitor turns it into messages.

    `warning` is called for a crossing before the run counts it: `run.announced` is then the index of the crossing
    being announced (which early warning, for a list `early_warning`)."""

    def run_started(self, state: OrderState, run: Run) -> None: ...

    def warning(self, state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> None: ...

    def outcome(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None: ...


@dataclass(slots=True, frozen=True)
class Rejection:
    reason: str  # one of vocabulary.REASONS
    detail: str


class Engine:
    """Applies events and time to order states under a policy set. Holds no order state itself."""

    def __init__(self, policies: PolicySet, *, remember_event_ids: bool = True):
        """`remember_event_ids=False` (the replay, which keeps its own set of applied ids across all orders) leaves
        `OrderState.event_ids` empty and skips the engine's own duplicate check: an order's ids are then neither
        searched nor copied for each event, which grows with the order's length (long traces)."""
        self.policies = policies
        self.remember_event_ids = remember_event_ids
        self._calendars: dict[str, Any] = dict(policies.calendars)

    def set_policies(self, policies: PolicySet) -> frozenset[str]:
        """New policies apply to runs started from now on: open runs keep their limits and policy version. Calendars
        are looked up by name, so a calendar the new policies define otherwise counts the working time of the open
        runs that use it from now on. Returns the names of the calendars redefined: the crossings the open runs had
        scheduled under the old definitions must be scheduled again (`reschedule`)."""
        self.policies = policies
        held = self._calendars
        redefined = frozenset(name for name, cal in policies.calendars.items()
                              if name in held and held[name].definition != cal.definition)
        held.update(policies.calendars)
        return redefined

    def calendar(self, name: str | None) -> Any:
        return ALWAYS_OPEN if name is None else self._calendars.get(name, ALWAYS_OPEN)

    # ------------------------------------------------------------ time

    def advance(self, state: OrderState, now: int, sink: Sink) -> None:
        """Announce every crossing with crossed_at < now, each exactly once, in order."""
        for run in state.runs.values():
            while run.due is not None and run.due < now:
                k = run.announced
                sink.warning(state, run, CROSSING_KINDS[k] if k > 0 else APPROACHING, run.state_after(k), run.due,
                             run.limit(k))
                run.announced = k + 1
                run.schedule()

    # ------------------------------------------------------------ events

    def apply(self, state: OrderState | None, ev: Event, sink: Sink) -> tuple[OrderState | None, Rejection | None]:
        """Apply one (well-formed) event. Returns the order's state (new or the same object, changed in place)
        and None, or the unchanged state and the reason the event cannot be applied."""
        # (the replay's hot path: the checks are inlined in the contract's order, each a dict or string lookup)
        remember = self.remember_event_ids
        if remember and state is not None and f"\x00{ev.event_id}\x00" in state.event_ids:  # state.has_event()
            return state, Rejection(DUPLICATE_EVENT, f"event_id {ev.event_id!r} was already applied")
        policy = self.policies.get(ev.process)
        if policy is None:
            return state, Rejection(UNKNOWN_PROCESS, f"no policy for process {ev.process!r}")
        node = ev.node
        etype = ev.type
        status = None
        if node is not None:
            if node == ORDER_NODE or (node not in policy.nodes and (state is None or node not in state.runs)):
                return state, Rejection(UNKNOWN_NODE, f"process {ev.process!r} has no node {node!r}")
        elif etype == STATUS_CHANGED:
            status = policy.statuses.get(ev.status) if policy.statuses is not None else None  # type: ignore[arg-type]
            if status is None:
                return state, Rejection(UNKNOWN_NODE, f"process {ev.process!r} maps no status {ev.status!r}"
                                        if policy.statuses is not None else
                                        f"process {ev.process!r} has no status mapping (statuses:)")
        at = ev.at
        if state is not None and state.last_at is not None and at < state.last_at:
            return state, Rejection(OUT_OF_ORDER, "event is earlier than the order's last accepted event")
        problem = self._transition_problem(state, ev, status)
        if problem is not None:
            return state, Rejection(INVALID_TRANSITION, problem)

        if state is None:
            state = OrderState(ev.order_id, ev.process)
        else:
            for run in state.runs.values():  # announce the crossings due before the event (advance), if any
                if run.due is not None and run.due < at:
                    self.advance(state, at, sink)
                    break
        if etype == NODE_STARTED:
            self._start(state, policy, node, ev, sink)  # type: ignore[arg-type]
        elif etype == NODE_COMPLETED:
            self._end(state, state.runs[node], at, False, sink)  # type: ignore[index]
        elif etype == NODE_CANCELLED:
            self._end(state, state.runs[node], at, True, sink)  # type: ignore[index]
        elif etype == NODE_PAUSED:
            state.runs[node].pause(at)  # type: ignore[index]
        elif etype == NODE_RESUMED:
            state.runs[node].resume(at)  # type: ignore[index]
        elif status is not None:
            self._status(state, policy, status, ev, sink)
        else:
            self._close(state, etype == ORDER_CANCELLED, at, sink)
        state.last_at = at
        if remember:
            state.event_ids += ev.event_id + "\x00"
        return state, None

    @staticmethod
    def _transition_problem(state: OrderState | None, ev: Event, status: StatusTarget | None) -> str | None:
        etype = ev.type
        if state is not None:
            if state.closed:
                word = "completed" if state.closed == CLOSED_COMPLETED else "cancelled"
                return f"order {ev.order_id!r} is already {word}"
            if state.process != ev.process:
                return f"order {ev.order_id!r} belongs to process {state.process!r}, not {ev.process!r}"
        if status is not None:
            if state is None:
                return None if status.action != PAUSE else status_problem(status, None, None)
            current = state.runs.get(state.status_node) if state.status_node is not None else None
            return status_problem(status, current, None if status.action == END else state.runs.get(status.target))
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

    def _start(self, state: OrderState, policy: Policy, node: str, ev: Event, sink: Sink) -> None:
        """Open a run of `node` (and the order-level run with the order's first run)."""
        at = ev.at
        segment = ev.segment
        if policy.matchers:  # (a policy without `match:` pays nothing more)
            segment = policy.segment_of(segment, ev.attrs)
        first = not state.counts
        number = state.counts.get(node, 0) + 1
        state.counts[node] = number
        lim = policy.limits(node, segment)
        cal_name = lim.calendar_name
        run = Run(node, number, at, segment, ev.attrs, policy.version, lim, cal_name,
                  ALWAYS_OPEN if cal_name is None else self._calendars.get(cal_name, ALWAYS_OPEN))  # self.calendar()
        run.schedule()
        state.runs[node] = run
        sink.run_started(state, run)
        if first and policy.order is not None:
            lim = policy.order_limits(segment)  # type: ignore[assignment]
            order_run = Run(ORDER_NODE, 1, at, segment, ev.attrs, policy.version, lim, lim.calendar_name,
                            self.calendar(lim.calendar_name))
            order_run.schedule()
            state.runs[ORDER_NODE] = order_run
            state.counts[ORDER_NODE] = 1
            sink.run_started(state, order_run)

    def _status(self, state: OrderState, policy: Policy, status: StatusTarget, ev: Event, sink: Sink) -> None:
        """Apply a mapped status (already checked): start or resume its node's run, pause it, or end the order."""
        if status.action == END:
            self._close(state, status.target == ORDER_CANCELLED, ev.at, sink)
            return
        current = state.runs.get(state.status_node) if state.status_node is not None else None
        if status.action == PAUSE:
            if current.paused_at is None:  # type: ignore[union-attr]
                current.pause(ev.at)  # type: ignore[union-attr]
        elif current is not None and current.node == status.target:
            if current.paused_at is not None:
                current.resume(ev.at)
        else:
            if current is not None:
                self._end(state, current, ev.at, False, sink)
            self._start(state, policy, status.target, ev, sink)
            state.status_node = status.target

    def _close(self, state: OrderState, cancelled: bool, at: int, sink: Sink) -> None:
        """`order_completed` / `order_cancelled`: every open run ends at `at` (a paused one where its pause began)."""
        state.closed = CLOSED_CANCELLED if cancelled else CLOSED_COMPLETED
        for run in list(state.runs.values()):
            self._end(state, run, at, cancelled, sink)

    @staticmethod
    def _end(state: OrderState, run: Run, at: int, cancelled: bool, sink: Sink) -> None:
        del state.runs[run.node]
        if run.node == state.status_node:
            state.status_node = None
        elapsed = run.elapsed(at)
        if cancelled:
            final = CANCELLED
        else:  # level_of, inlined
            final = COMPLETED_BY_LEVEL[0 if elapsed <= run.commitment else 1 if elapsed <= run.tolerance else 2]
        sink.outcome(state, run, final, at, elapsed)
        if run.announced > COMMIT:  # commitment_breached was announced
            sink.warning(state, run, RESOLVED, final, at, elapsed)
