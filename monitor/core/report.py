"""Period reports (CONTRACTS.md section 8), pure: the seven-state table period by period, tallied by a replay
sink in the replay's one pass over the events.

For a period `[s, e)`, a run counts as `completed_*` / `cancelled` in the period its end falls in, and as
`in_progress_*` in every period whose end `e` comes after its start and not after its end (or, while it is
open, every period up to the one holding `now`), judged at `min(e, now)`. An ended run is judged at the ends of
the periods it spans when it ends (its pauses are all known by then). A run still open after the replay is in
progress in every period from its start to `now`: its level only rises, so the periods where it changes are
found by bisection and the counts added per stretch of equal level, not period by period.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date
from typing import Any

from .engine import OrderState, Run, level_of
from .instants import format_instant
from .periods import Periods
from .summary import NodeTally
from .tracking import TrackingSink
from .vocabulary import IN_PROGRESS_BY_LEVEL, STATES

TallyKey = tuple[int, str, str, str | None, str | None]  # (period start, process, node, segment or None, owner)


class ReportSink(TrackingSink):
    """Tallies runs per (period, process, node[, segment], owner)."""

    def __init__(self, periods: Periods, by_segment: bool = False):
        super().__init__()
        self.periods = periods
        self.by_segment = by_segment
        self.tallies: dict[TallyKey, NodeTally] = {}
        self._current = (0, 0)  # the period the last run ended in: runs end in time order

    def _tally(self, start: int, process: str, run: Run) -> NodeTally:
        key = (start, process, run.node, run.segment if self.by_segment else None, run.owner)
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = NodeTally()
        return tally

    def ended(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        current = self._current
        if not current[0] <= ended_at < current[1]:
            current = self._current = self.periods.of(ended_at)
        self._tally(current[0], state.process, run).add(run_state, elapsed)
        if run.started_at < current[0]:  # in progress at the end of each earlier period it spans
            of = self.periods.of
            start, end = of(run.started_at)
            while end <= ended_at:
                self._tally(start, state.process, run).add(run.judge(end))
                start, end = of(end)

    def finish(self, now: int) -> None:
        """Judge the runs still open after the replay in every period from their start to the one holding `now`."""
        if not self.open:
            return
        spans = self.periods.span(min(run.started_at for _, run in self.open.values()), now)
        starts = [s for s, _ in spans]
        judged = [min(e, now) for _, e in spans]
        n = len(spans)
        # per (process, node, segment, owner): at each period index, the change in runs in progress at each level
        changes: dict[tuple[str, str, str | None, str | None], list[list[int]]] = {}
        for state, run in self.open.values():
            first = bisect_right(starts, run.started_at) - 1
            bounds = [first, *(first + bisect_left(range(first, n), True, key=lambda k, lv=level, r=run:
                                                   level_of(r.elapsed(judged[k]), r.commitment, r.tolerance) >= lv)
                               for level in (1, 2)), n]
            key = (state.process, run.node, run.segment if self.by_segment else None, run.owner)
            delta = changes.get(key)
            if delta is None:
                delta = changes[key] = [[0, 0, 0] for _ in range(n + 1)]
            for level in range(3):  # in progress at `level` from bounds[level] up to bounds[level + 1]
                delta[bounds[level]][level] += 1
                delta[bounds[level + 1]][level] -= 1
        for (process, node, segment, owner), delta in changes.items():
            running = [0, 0, 0]
            for k in range(n):
                for level in range(3):
                    running[level] += delta[k][level]
                if any(running):
                    key = (starts[k], process, node, segment, owner)
                    tally = self.tallies.get(key)
                    if tally is None:
                        tally = self.tallies[key] = NodeTally()
                    for level in range(3):
                        tally.counts[IN_PROGRESS_BY_LEVEL[level]] += running[level]


def reported_periods(periods: Periods, first_at: int | None, now: int | None, from_date: date | None = None,
                     to_date: date | None = None) -> list[tuple[int, int]]:
    """The periods a report shows: from the one holding `from_date` (default: the first event) to the one holding
    `to_date` (default: `now`), none starting after `now`."""
    if now is None:
        return []
    if from_date is not None:
        first = periods.of_date(from_date)[0]
    elif first_at is not None:
        first = first_at
    else:
        return []
    last = now if to_date is None else min(now, periods.of_date(to_date)[0])
    return periods.span(first, last)


def _add_into(total: NodeTally, part: NodeTally, durations: bool) -> None:
    for s in STATES:
        total.counts[s] += part.counts[s]
    if durations:
        total.durations.extend(part.durations)


def owner_row(owner: str | None, tally: NodeTally) -> dict[str, Any]:
    row = tally.row("", "")
    del row["process"], row["node"], row["duration_s"]
    return {"owner": owner, **row}


def report_document(sink: ReportSink, first_at: int | None, now: int | None, from_date: date | None = None,
                    to_date: date | None = None) -> dict[str, Any]:
    """The report of section 8 (`--format json`) from a finished sink."""
    periods = sink.periods
    shown = reported_periods(periods, first_at, now, from_date, to_date)
    rows: dict[tuple[int, str, str, str | None], NodeTally] = {}
    owners: dict[tuple[int, str | None], NodeTally] = {}
    wanted = {start for start, _ in shown}
    for (start, process, node, segment, owner), tally in sink.tallies.items():
        if start in wanted:
            _add_into(rows.setdefault((start, process, node, segment), NodeTally()), tally, True)
            _add_into(owners.setdefault((start, owner), NodeTally()), tally, False)
    by_period: dict[int, dict[str, list[dict[str, Any]]]] = {start: {"summary": [], "owners": []} for start in wanted}
    for (start, process, node, segment), tally in sorted(rows.items(), key=lambda kv: (*kv[0][:3],
                                                                                       *_last_none(kv[0][3]))):
        row = tally.row(process, node)
        by_period[start]["summary"].append({"process": process, "node": node, "segment": segment, **row}
                                           if sink.by_segment else row)
    for (start, owner), tally in sorted(owners.items(), key=lambda kv: (kv[0][0], *_last_none(kv[0][1]))):
        by_period[start]["owners"].append(owner_row(owner, tally))
    return {
        "timezone": periods.timezone,
        "period": periods.kind,
        "now": None if now is None else format_instant(now),
        "periods": [
            {"start": format_instant(start), "end": format_instant(end),
             "judged_at": format_instant(min(end, now)),  # type: ignore[type-var]
             **by_period[start]}
            for start, end in shown
        ],
    }


def _last_none(value: str | None) -> tuple[bool, str]:
    return value is None, value or ""
