"""The output records of CONTRACTS.md section 4 (warnings and outcomes), built from runs."""

from __future__ import annotations

from typing import Any

from .engine import OrderState, Run
from .instants import US, format_instant


def run_fields(state: OrderState, run: Run) -> dict[str, Any]:
    return {
        "order_id": state.order_id,
        "process": state.process,
        "node": run.node,
        "run": run.number,
        "segment": run.segment,
        "owner": run.owner,
        "policy_version": run.version,
        "attrs": run.attrs or {},
    }


def _judged(rec: dict[str, Any], run: Run, run_state: str, instant_field: str, at: int, elapsed: int) -> dict[str, Any]:
    rec["state"] = run_state
    rec["started_at"] = format_instant(run.started_at)
    rec[instant_field] = format_instant(at)
    rec["elapsed_s"] = elapsed / US
    rec["commitment_s"] = run.commitment / US
    rec["tolerance_s"] = run.tolerance / US
    return rec


def warning_record(state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> dict[str, Any]:
    """A warning (without `detected_at`, which only the live monitor adds)."""
    rec = {"warning_id": f"{state.order_id}:{run.node}:{run.number}:{kind}", "kind": kind}
    rec.update(run_fields(state, run))
    return _judged(rec, run, run_state, "crossed_at", at, elapsed)


def outcome_record(state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> dict[str, Any]:
    return _judged(run_fields(state, run), run, run_state, "ended_at", ended_at, elapsed)
