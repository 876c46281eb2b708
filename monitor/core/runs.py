"""A run's clock and an order's runs: elapsed working time, the instants its limits are used up, the crossings it
has announced (CONTRACTS.md section 1). All instants and durations are integer microseconds.

A run's crossings come in a fixed order, counted by `Run.announced` (the index of the next one): the early
warnings (index 0 for a single `early_warning`; 1-k .. 0 for a list of k, ascending), then `commitment_breached`
(1) and `tolerance_breached` (2); 3 means all announced. A run without early warnings starts at 1.
"""

from __future__ import annotations

from typing import Any

from .calendars import ALWAYS_OPEN
from .policies import Limits
from .vocabulary import IN_PROGRESS_BY_LEVEL, IN_PROGRESS_NORMAL

APPROACH, COMMIT, TOLER, DONE = 0, 1, 2, 3

OPEN, CLOSED_COMPLETED, CLOSED_CANCELLED = 0, 1, 2  # OrderState.closed


def level_of(elapsed: int, commitment: int, tolerance: int) -> int:
    """0 normal (e <= C), 1 acceptable (C < e <= T), 2 warning (e > T)."""
    if elapsed <= commitment:
        return 0
    return 1 if elapsed <= tolerance else 2


class Run:
    """One pass of an order through a node, with the limits and policy version it started under and its calendar
    (by name: see Engine.set_policies)."""

    __slots__ = (
        "node", "number", "started_at", "segment", "attrs", "version", "commitment", "tolerance",
        "approaching", "owner", "calendar_name", "calendar", "pauses", "paused_at", "announced", "due", "grades",
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
        self.grades = limits.grades
        self.owner = limits.owner
        self.calendar_name = calendar_name
        self.calendar = calendar
        self.pauses: tuple[tuple[int, int], ...] = ()  # closed pauses (start, end), in order
        self.paused_at: int | None = None
        # the index of the next crossing to announce (see first_crossing; inlined: this is the replay's hot path)
        self.announced = APPROACH if limits.approaching is not None else COMMIT if limits.grades is None \
            else 1 - len(limits.grades)
        self.due: int | None = None

    @classmethod
    def restore(cls, node: str, number: int, started_at: int, segment: str, attrs: dict | None, version: int,
                commitment: int, tolerance: int, approaching: int | None, grades: Any, owner: str | None,
                calendar_name: str | None, calendar: Any, pauses: tuple[tuple[int, int], ...], paused_at: int | None,
                announced: int, due: int | None) -> Run:
        """A run as `codec` stored it, every field given (no Limits built: the live worker decodes the runs of each
        order of each batch)."""
        run = cls.__new__(cls)
        run.node, run.number, run.started_at, run.segment, run.attrs, run.version = \
            node, number, started_at, segment, attrs, version
        run.commitment, run.tolerance, run.approaching, run.grades, run.owner = \
            commitment, tolerance, approaching, grades, owner
        run.calendar_name, run.calendar, run.pauses, run.paused_at, run.announced, run.due = \
            calendar_name, calendar, pauses, paused_at, announced, due
        return run

    def first_crossing(self) -> int:
        """The index of the run's first crossing."""
        if self.grades is not None:
            return 1 - len(self.grades)
        return APPROACH if self.approaching is not None else COMMIT

    def limit(self, index: int) -> int:
        if index == COMMIT:
            return self.commitment
        if index == TOLER:
            return self.tolerance
        if self.grades is None:
            return self.approaching  # type: ignore[return-value]
        return self.grades[index - 1][1]  # index 0 is the last (largest) grade, 1-k the first

    def grade(self, index: int) -> float | None:
        """The fraction of the early warning with crossing index `index`, for a list `early_warning`."""
        return self.grades[index - 1][0] if self.grades is not None and index <= 0 else None

    def elapsed(self, t: int) -> int:
        """Working time consumed from the start up to `t`, without paused spans."""
        cal = self.calendar
        if not self.pauses and self.paused_at is None:  # the common case: one span, no pause
            if cal is ALWAYS_OPEN:
                return t - self.started_at if t > self.started_at else 0
            return cal.working(self.started_at, t)
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
        k = self.announced
        if k >= DONE:
            self.due = None
            return
        amount = self.commitment if k == COMMIT else self.tolerance if k == TOLER else self.limit(k)
        if not self.pauses and self.paused_at is None:  # the common case (used_up of one span), inlined
            cal = self.calendar
            self.due = self.started_at + amount if cal is ALWAYS_OPEN else cal.used_up(self.started_at, amount)
        else:
            self.due = self.used_up(amount)

    def pause(self, at: int) -> None:
        self.paused_at = at
        self.schedule()

    def resume(self, at: int) -> None:
        self.pauses = (*self.pauses, (self.paused_at, at))  # type: ignore[assignment]
        self.paused_at = None
        self.schedule()

    def state_after(self, index: int) -> str:
        """The run's state just after crossing `index` (`in_progress_normal` for an early warning)."""
        if index <= APPROACH:
            return IN_PROGRESS_NORMAL
        return IN_PROGRESS_BY_LEVEL[2 if self.limit(index) >= self.tolerance else 1]

    def judge(self, now: int) -> str:
        """In-progress state at `now`."""
        return IN_PROGRESS_BY_LEVEL[level_of(self.elapsed(now), self.commitment, self.tolerance)]


class OrderState:
    """The state of one order: its open runs, run numbers, applied event ids, last event time, and the node of its
    current status run (section 12)."""

    __slots__ = ("order_id", "process", "last_at", "event_ids", "closed", "counts", "runs", "status_node")

    def __init__(self, order_id: str, process: str):
        self.order_id = order_id
        self.process = process
        self.last_at: int | None = None
        self.event_ids = "\x00"  # applied event ids, each followed by NUL: compact and cheap to test
        self.closed = OPEN
        self.counts: dict[str, int] = {}  # node -> runs started so far
        self.runs: dict[str, Run] = {}  # node -> open run (including the order-level run)
        self.status_node: str | None = None  # the node of the open run the last applied status started

    def has_event(self, event_id: str) -> bool:
        return f"\x00{event_id}\x00" in self.event_ids

    @property
    def is_closed(self) -> bool:
        return self.closed != OPEN

    @property
    def finished(self) -> bool:
        """Closed with no open run left: nothing can change any more."""
        return self.closed != OPEN and not self.runs


def announced_level(announced: int) -> int:
    """The level announced for an open run whose crossings before index `announced` were announced
    (`Run.announced`): 0 normal, 1 acceptable, 2 warning."""
    if announced <= COMMIT:
        return 0
    return 1 if announced == TOLER else 2


def reschedule(state: OrderState) -> bool:
    """Schedule the next crossing of every open run that has a calendar again, from the calendar it has now (after
    a redefinition). True when one of them changed."""
    changed = False
    for run in state.runs.values():
        if run.calendar_name is not None:
            due = run.due
            run.schedule()
            if run.due != due:
                changed = True
    return changed


def next_deadline(state: OrderState) -> int | None:
    """The earliest instant at which a crossing of this order is due (None: nothing can cross now)."""
    best = None
    for run in state.runs.values():
        if run.due is not None and (best is None or run.due < best):
            best = run.due
    return best
