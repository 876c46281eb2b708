"""Limit recommendations (CONTRACTS.md section 10), pure: the elapsed working time of every run, measured by the
replay, and the smallest multiple of a granularity that reaches an attainment target.

For a limit `L`: attainment = (completed runs with elapsed <= L) / (completed runs + runs open at `now` with
elapsed > L). Open runs still within `L` are left out (their outcome is unknown), cancelled runs too. It never
falls as `L` grows, and it changes only at the elapsed values of runs: the smallest `L` reaching a target is
one of them (or 0), and the smallest multiple of the granularity reaching it is the first at or above that.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

from .engine import OrderState, Run
from .instants import US, format_instant
from .policies import Limits, PolicySet
from .tracking import TrackingSink
from .vocabulary import CANCELLED, DEFAULT_SEGMENT, ORDER_NODE

GroupKey = tuple[str, str, str | None]  # (process, node, segment or None)


def default_tolerance_target(target: float) -> float:
    return 1 - (1 - target) / 4


@dataclass(slots=True)
class Group:
    """The runs of one (process, node[, segment]): elapsed working microseconds."""

    completed: array = field(default_factory=lambda: array("q"))
    open: array = field(default_factory=lambda: array("q"))  # elapsed at `now`
    cancelled: int = 0


class RecommendSink(TrackingSink):
    def __init__(self, by_segment: bool = False):
        super().__init__()
        self.by_segment = by_segment
        self.groups: dict[GroupKey, Group] = {}

    def _group(self, process: str, run: Run) -> Group:
        # the order-level run has the order's limits whatever its segment: one group over all segments
        key = (process, run.node, run.segment if self.by_segment and run.node != ORDER_NODE else None)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group()
        return group

    def ended(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        group = self._group(state.process, run)
        if run_state == CANCELLED:
            group.cancelled += 1
        else:
            group.completed.append(elapsed)

    def finish(self, now: int) -> None:
        for state, run in self.open.values():
            self._group(state.process, run).open.append(run.elapsed(now))


class Attainment:
    """Attainment as a function of the limit, over sorted elapsed values."""

    def __init__(self, group: Group):
        self.completed = sorted(group.completed)
        self.open = sorted(group.open)

    def at(self, limit: int) -> float:
        within = bisect_right(self.completed, limit)
        beyond = len(self.open) - bisect_right(self.open, limit)
        return within / (len(self.completed) + beyond)

    def smallest_multiple(self, target: float, granularity: int) -> int:
        """The smallest positive multiple of `granularity` whose attainment is at least `target` (0 < target <= 1)."""
        steps = sorted({0, *self.completed, *self.open})
        first = bisect_left(range(len(steps)), True, key=lambda i: self.at(steps[i]) >= target)
        return max(1, -(-steps[first] // granularity)) * granularity


def _limits(policies: PolicySet, process: str, node: str, segment: str | None) -> Limits | None:
    policy = policies.get(process)
    if policy is None:
        return None
    if node == ORDER_NODE:
        return policy.order
    return policy.limits(node, segment or DEFAULT_SEGMENT) if node in policy.nodes else None


def _measured(att: Attainment, commitment: int, tolerance: int) -> dict[str, float]:
    return {"commitment_s": commitment / US, "tolerance_s": tolerance / US,
            "attainment": att.at(commitment), "tolerance_attainment": att.at(tolerance)}


def candidate_groups(policies: PolicySet, sink: RecommendSink) -> list[GroupKey]:
    """The groups with runs, and every node of the policies (and order level) that has none, as (p, n, default)."""
    keys = set(sink.groups)
    with_runs = {(p, n) for p, n, _ in keys}
    segment = DEFAULT_SEGMENT if sink.by_segment else None
    for process, policy in policies.policies.items():
        nodes = [*([ORDER_NODE] if policy.order is not None else []), *policy.nodes]
        for node in nodes:
            if (process, node) not in with_runs:
                keys.add((process, node, None if node == ORDER_NODE else segment))
    return sorted(keys, key=lambda k: (k[0], k[1], k[2] or ""))


def recommend_document(policies: PolicySet, sink: RecommendSink, now: int | None, target: float,
                       tolerance_target: float, granularity: int, min_runs: int) -> dict[str, Any]:
    """The recommendations of section 10 (`--json`) from a finished sink."""
    rows, skipped = [], []
    for process, node, segment in candidate_groups(policies, sink):
        group = sink.groups.get((process, node, segment), Group())
        runs = len(group.completed) + len(group.open)
        limits = _limits(policies, process, node, segment)
        head = {"process": process, "node": node, "segment": segment, "runs": runs}
        if runs < min_runs or not group.completed or limits is None:
            skipped.append(head)
            continue
        att = Attainment(group)
        commitment = att.smallest_multiple(target, granularity)
        tolerance = max(commitment, att.smallest_multiple(tolerance_target, granularity))
        rows.append({**head, "current": _measured(att, limits.commitment, limits.tolerance),
                     "recommended": _measured(att, commitment, tolerance)})
    return {"now": None if now is None else format_instant(now), "target": target,
            "tolerance_target": tolerance_target, "rows": rows, "skipped": skipped}
