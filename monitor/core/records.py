"""The records of CONTRACTS.md section 4 (warnings and outcomes), and the view of an open run judged at an
instant (the query API's table runs), built from runs."""

from __future__ import annotations

from typing import Any

from .engine import OrderState, Run, level_of
from .instants import US, format_instant
from .runs import APPROACH
from .thresholds import threshold_label
from .vocabulary import APPROACHING, CROSSING_KINDS, LEVELS

# The fields every warning and outcome carries about its run, in record order.
RUN_FIELDS = ("order_id", "process", "node", "run", "segment", "owner", "policy_version", "attrs")
# The fields of a warning record, in record order (`detected_at` only on the live monitor's).
WARNING_FIELDS = (
    "warning_id", "kind", *RUN_FIELDS, "state", "started_at", "crossed_at", "detected_at", "elapsed_s",
    "commitment_s", "tolerance_s",
)


def run_fields(state: OrderState, run: Run) -> dict[str, Any]:
    return dict(zip(RUN_FIELDS, (state.order_id, state.process, run.node, run.number, run.segment, run.owner,
                                 run.version, run.attrs or {}), strict=True))


def _judged(rec: dict[str, Any], run: Run, run_state: str, instant_field: str, at: int, elapsed: int) -> dict[str, Any]:
    rec["state"] = run_state
    rec["started_at"] = format_instant(run.started_at)
    rec[instant_field] = format_instant(at)
    rec["elapsed_s"] = elapsed / US
    rec["commitment_s"] = run.commitment / US
    rec["tolerance_s"] = run.tolerance / US
    return rec


def warning_id(order_id: str, node: str, run: int, kind: str, threshold: float | None = None) -> str:
    """`{order_id}:{node}:{run}:{kind}`; for an early warning of a list `early_warning`, `...:approaching@{p}`."""
    if threshold is not None:
        return f"{order_id}:{node}:{run}:{kind}@{threshold_label(threshold)}"
    return f"{order_id}:{node}:{run}:{kind}"


def warning_record(state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> dict[str, Any]:
    """A warning (without `detected_at`, which only the live monitor adds). Called before the run counts the
    crossing (see `engine.Sink`): an early warning of a list is the one at index `run.announced`."""
    threshold = run.grade(run.announced) if kind == APPROACHING and run.grades is not None else None
    if threshold is None:  # the common case in one literal (a replay builds one per crossing): the same fields
        order_id, node, number = state.order_id, run.node, run.number
        return {"warning_id": f"{order_id}:{node}:{number}:{kind}", "kind": kind, "order_id": order_id,
                "process": state.process, "node": node, "run": number, "segment": run.segment, "owner": run.owner,
                "policy_version": run.version, "attrs": run.attrs or {}, "state": run_state,
                "started_at": format_instant(run.started_at), "crossed_at": format_instant(at),
                "elapsed_s": elapsed / US, "commitment_s": run.commitment / US, "tolerance_s": run.tolerance / US}
    rec: dict[str, Any] = {"warning_id": warning_id(state.order_id, run.node, run.number, kind, threshold),
                           "kind": kind, "threshold": threshold}
    rec.update(run_fields(state, run))
    return _judged(rec, run, run_state, "crossed_at", at, elapsed)


def outcome_record(state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> dict[str, Any]:
    # (one literal, as the common warning: every ended run makes one) the fields of run_fields + _judged, in order
    return {"order_id": state.order_id, "process": state.process, "node": run.node, "run": run.number,
            "segment": run.segment, "owner": run.owner, "policy_version": run.version, "attrs": run.attrs or {},
            "state": run_state, "started_at": format_instant(run.started_at), "ended_at": format_instant(ended_at),
            "elapsed_s": elapsed / US, "commitment_s": run.commitment / US, "tolerance_s": run.tolerance / US}


def announced_crossings(run: Run) -> list[str]:
    """The crossing kinds announced for an open run, in order, each once (`approaching` when the policy has early
    warnings and the first was announced)."""
    early = [APPROACHING] if run.announced > run.first_crossing() and run.first_crossing() <= APPROACH else []
    return early + list(CROSSING_KINDS[1:max(run.announced, 1)])


def open_run_view(run: Run, now: int) -> dict[str, Any]:
    """An open run judged at `now` (microseconds): state, level, pause and elapsed as of then."""
    elapsed = run.elapsed(now)
    return {
        "node": run.node,
        "run": run.number,
        "state": run.judge(now),
        "level": LEVELS[level_of(elapsed, run.commitment, run.tolerance)],
        "segment": run.segment,
        "owner": run.owner,
        "policy_version": run.version,
        "attrs": run.attrs or {},
        "started_at": format_instant(run.started_at),
        "ended_at": None,
        "paused": run.paused_at is not None,
        "paused_at": None if run.paused_at is None else format_instant(run.paused_at),
        "elapsed_s": elapsed / US,
        "commitment_s": run.commitment / US,
        "tolerance_s": run.tolerance / US,
        "crossings": announced_crossings(run),
    }
