"""Recording rules: rolling attainment per (process, node, segment), (process, node) and process over the report
windows, plus the shorter (process, node) windows the burn-rate alerts need.

Always `sum by (...) (increase(x[w]))`: increase per series first, then sum, so a worker restart (or a partition
moving to another worker) is only a counter reset. Ratios are left out (no series) while their denominator is 0,
instead of NaN.
"""

from __future__ import annotations

from typing import Any

from ..core.vocabulary import ORDER_NODE
from .model import (
    AGGREGATIONS,
    BURN_ONLY_WINDOWS,
    REPORT_WINDOWS,
    SLOW_GROUP_INTERVAL,
    SLOW_WINDOWS,
    window_hours,
)


def _record(name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr}


def recording_groups() -> list[dict[str, Any]]:
    """One group per window, shortest window first."""
    groups = [_report_group(w) for w in REPORT_WINDOWS] + [_burn_group(w) for w in BURN_ONLY_WINDOWS]
    groups.sort(key=lambda g: window_hours(g["name"].rsplit("-", 1)[1]))
    return groups


def recorded_names() -> set[str]:
    """Every series the recording rules record."""
    return {r["record"] for g in recording_groups() for r in g["rules"]}


def _group(window: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    g: dict[str, Any] = {"name": f"slamon-sla-{window}"}
    if window in SLOW_WINDOWS:
        g["interval"] = SLOW_GROUP_INTERVAL
    g["rules"] = rules
    return g


def _report_group(w: str) -> dict[str, Any]:
    outcomes = f"process_node_segment_state:sla_run_outcomes:increase_{w}"
    started = f"process_node_segment:sla_runs_started:increase_{w}"
    breaches = f"process_node_segment:sla_commitment_breaches:increase_{w}"
    rules = [
        _record(outcomes, f"sum by (process, node, segment, state) (increase(sla_run_outcomes_total[{w}]))"),
        _record(started, f"sum by (process, node, segment) (increase(sla_runs_started_total[{w}]))"),
        _record(breaches, f'sum by (process, node, segment) (increase(sla_crossings_total{{kind="commitment_breached"}}[{w}]))'),
    ]
    for aggregation, labels in AGGREGATIONS.items():
        by = ", ".join(labels)
        # The process aggregation pools node runs only; the order-level run is its own row (node="__order__").
        only = f',node!="{ORDER_NODE}"' if aggregation == "process" else ""
        completed = f"{aggregation}:sla_runs_completed:increase_{w}"
        ended = f"{aggregation}:sla_runs_ended:increase_{w}"
        rules += [
            _record(completed, f'sum by ({by}) ({outcomes}{{state=~"completed_.*"{only}}})'),
            _record(ended, f"sum by ({by}) ({outcomes}{{{only[1:]}}})" if only else f"sum by ({by}) ({outcomes})"),
            _record(f"{aggregation}:sla_commitment_attainment:ratio_{w}",
                    f'sum by ({by}) ({outcomes}{{state="completed_normal"{only}}}) / ({completed} > 0)'),
            _record(f"{aggregation}:sla_tolerance_attainment:ratio_{w}",
                    f'1 - sum by ({by}) ({outcomes}{{state="completed_warning"{only}}}) / ({completed} > 0)'),
            _record(f"{aggregation}:sla_breach_rate:ratio_{w}",
                    f"sum by ({by}) ({breaches}{{{only[1:]}}}) / (sum by ({by}) ({started}{{{only[1:]}}}) > 0)"
                    if only else f"sum by ({by}) ({breaches}) / (sum by ({by}) ({started}) > 0)"),
            _record(f"{aggregation}:sla_cancellation_rate:ratio_{w}",
                    f'sum by ({by}) ({outcomes}{{state="cancelled"{only}}}) / ({ended} > 0)'),
        ]
    return _group(w, rules)


def _burn_group(w: str) -> dict[str, Any]:
    outcomes = f"process_node_state:sla_run_outcomes:increase_{w}"
    completed = f"process_node:sla_runs_completed:increase_{w}"
    return _group(w, [
        _record(outcomes, f'sum by (process, node, state) (increase(sla_run_outcomes_total{{state=~"completed_.*"}}[{w}]))'),
        _record(completed, f"sum by (process, node) ({outcomes})"),
        _record(f"process_node:sla_commitment_attainment:ratio_{w}",
                f'sum by (process, node) ({outcomes}{{state="completed_normal"}}) / ({completed} > 0)'),
    ])
