"""An order's state as compact bytes (the live monitor's table values) and back.

Format 1 is the state of an order that uses no feature of CONTRACTS.md section 12 (byte for byte what it always
was); format 2 adds the order's current status node and lets a run carry graded early warnings. A reader that
knows only format 1 refuses format 2 with a clear error instead of misreading it. Decoding builds the runs
directly (`Run.restore`), not through the policies' `Limits`: the live worker decodes each order of each batch.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from .runs import OrderState, Run

_FORMAT, _FORMAT_STATUSES = 1, 2


class Calendars(Protocol):
    def calendar(self, name: str | None) -> Any: ...


def dump_state(state: OrderState) -> bytes:
    newer = state.status_node is not None
    runs = []
    for r in state.runs.values():
        early: Any = r.approaching
        if r.grades is not None:
            early, newer = [list(g) for g in r.grades], True
        runs.append([r.node, r.number, r.started_at, r.segment, r.attrs, r.version, r.commitment, r.tolerance, early,
                     r.owner, r.calendar_name, [x for p in r.pauses for x in p] if r.pauses else [], r.paused_at,
                     r.announced, r.due])
    head = [_FORMAT_STATUSES if newer else _FORMAT, state.order_id, state.process, state.last_at, state.event_ids,
            state.closed, state.counts, runs]
    if newer:
        head.append(state.status_node)
    return orjson.dumps(head)


def load_state(data: bytes, calendars: Calendars) -> OrderState:
    """The state `dump_state` wrote; calendars by name from `calendars` (the engine, which keeps every calendar a
    policy in force or an earlier one named)."""
    fmt, order_id, process, last_at, event_ids, closed, counts, runs, *rest = orjson.loads(data)
    if fmt not in (_FORMAT, _FORMAT_STATUSES) or len(rest) != (fmt == _FORMAT_STATUSES):
        raise ValueError(f"unknown order state format {fmt}")
    state = OrderState(order_id, process)
    state.last_at = last_at
    state.event_ids = event_ids
    state.closed = closed
    state.counts = counts
    if rest:
        state.status_node = rest[0]
    calendar = calendars.calendar
    for (node, number, started_at, segment, attrs, version, c, t, early, owner, cal_name, flat_pauses, paused_at,
         announced, due) in runs:
        grades = None
        if type(early) is list:
            grades, early = tuple((f, a) for f, a in early), None
        if type(flat_pauses) is list and not flat_pauses:  # no pause (the common case)
            pauses: tuple[tuple[int, int], ...] = ()
        else:
            pauses = tuple(zip(flat_pauses[::2], flat_pauses[1::2], strict=True))
        state.runs[node] = Run.restore(node, number, started_at, segment, attrs, version, c, t, early, grades, owner,
                                       cal_name, calendar(cal_name), pauses, paused_at, announced, due)
    return state
