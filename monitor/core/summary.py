"""The seven-state table of a period per (process, node), with rates, flag and duration statistics."""

from __future__ import annotations

from array import array
from typing import Any

from .instants import US
from .vocabulary import (
    CANCELLED,
    COMPLETED_ACCEPTABLE,
    COMPLETED_NORMAL,
    COMPLETED_WARNING,
    IN_PROGRESS_ACCEPTABLE,
    IN_PROGRESS_NORMAL,
    IN_PROGRESS_WARNING,
    STATES,
)

_COMPLETED = frozenset((COMPLETED_NORMAL, COMPLETED_ACCEPTABLE, COMPLETED_WARNING))

TIGHTEN_AT = 0.9  # rates.normal >= this: the commitment is easy to keep
IMPROVE_BELOW = 0.1  # rates.normal < this: the flow needs fixing


def percentile(sorted_values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (rank = p * (n - 1))."""
    n = len(sorted_values)
    rank = p * (n - 1)
    lo = int(rank)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


class NodeTally:
    __slots__ = ("counts", "durations")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(STATES, 0)
        self.durations = array("q")  # working microseconds of completed runs

    def add(self, state: str, elapsed_us: int | None = None) -> None:
        """One run in `state`; a completed run's working time (when given) joins the duration statistics."""
        self.counts[state] += 1
        if elapsed_us is not None and state in _COMPLETED:
            self.durations.append(elapsed_us)

    def row(self, process: str, node: str) -> dict[str, Any]:
        c = self.counts
        total = sum(c.values())
        judged = total - c[CANCELLED]
        if judged:
            rates: dict[str, float | None] = {
                "normal": (c[COMPLETED_NORMAL] + c[IN_PROGRESS_NORMAL]) / judged,
                "acceptable": (c[COMPLETED_ACCEPTABLE] + c[IN_PROGRESS_ACCEPTABLE]) / judged,
                "warning": (c[COMPLETED_WARNING] + c[IN_PROGRESS_WARNING]) / judged,
            }
        else:
            rates = {"normal": None, "acceptable": None, "warning": None}
        normal = rates["normal"]
        flag = None if normal is None else "tighten" if normal >= TIGHTEN_AT else "improve" if normal < IMPROVE_BELOW else None
        return {"process": process, "node": node, **c, "total": total, "rates": rates, "flag": flag,
                "duration_s": duration_stats(self.durations)}


def duration_stats(durations_us: array | list[int]) -> dict[str, Any]:
    n = len(durations_us)
    if not n:
        return {"count": 0, "mean": None, "min": None, "max": None, "p50": None, "p90": None}
    values = sorted(d / US for d in durations_us)
    return {"count": n, "mean": sum(durations_us) / n / US, "min": values[0], "max": values[-1],
            "p50": percentile(values, 0.5), "p90": percentile(values, 0.9)}


class Summary:
    """Accumulates ended runs as they end and open runs judged at the end."""

    def __init__(self) -> None:
        self.tallies: dict[tuple[str, str], NodeTally] = {}

    def add(self, process: str, node: str, state: str, elapsed_us: int | None = None) -> None:
        # (once per run of a replay: the lookup and NodeTally.add inlined)
        tally = self.tallies.get((process, node))
        if tally is None:
            tally = self.tallies[process, node] = NodeTally()
        tally.counts[state] += 1
        if elapsed_us is not None and state in _COMPLETED:
            tally.durations.append(elapsed_us)

    def rows(self) -> list[dict[str, Any]]:
        return [t.row(p, n) for (p, n), t in sorted(self.tallies.items())]
