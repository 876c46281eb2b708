"""SLO rules, for every process whose policy sets `target`: the target as a series, the error budget left over 30d,
and multiwindow multi-burn-rate alerts (Google SRE workbook, chapter "Alerting on SLOs") per node, with burn
factors derived from the target so that every emitted factor can fire, and a minimum-volume guard."""

from __future__ import annotations

from typing import Any

from ..core.policies import Policy, PolicySet
from ..core.vocabulary import ORDER_NODE
from .model import MAX_ERROR_RATIO, SLO_PERIOD, SLOW_GROUP_INTERVAL, BurnTier, Options, budget_of, burn_tiers


def _pct(x: float) -> str:
    return f"{x * 100:.4g}%"


def _owner_of(policy: Policy, node: str) -> str | None:
    if node == ORDER_NODE:
        return policy.order.owner if policy.order is not None else None
    return policy.nodes[node].owner


def slo_groups(policies: PolicySet, opts: Options) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for name, p in sorted(policies.policies.items()):
        if p.target is None:
            continue
        budget = budget_of(p.target)
        targets.append({"record": "process:sla_commitment_target:ratio", "expr": f"vector({p.target:g})",
                        "labels": {"process": name}})
        targets.append({
            "record": "process_node:sla_error_budget_remaining:ratio_30d",
            "expr": f'1 - (1 - process_node:sla_commitment_attainment:ratio_30d{{process="{name}"}}) / {budget:g}',
            "labels": {"process": name},
        })
        nodes = ([ORDER_NODE] if p.order is not None else []) + list(p.nodes)
        tiers = burn_tiers(p.target)
        for node in nodes:
            for t in tiers:
                alerts.append(_burn_alert(name, node, _owner_of(p, node), p.target, budget, t, opts))
    groups = []
    if targets:
        groups.append({"name": "slamon-slo-targets", "interval": SLOW_GROUP_INTERVAL, "rules": targets})
    if alerts:
        groups.append({"name": "slamon-slo-burn-rate", "rules": alerts})
    return groups


def _burn_alert(process: str, node: str, owner: str | None, target: float, budget: float, t: BurnTier,
                opts: Options) -> dict[str, Any]:
    sel = f'{{process="{process}",node="{node}"}}'
    expr = (
        f"(1 - process_node:sla_commitment_attainment:ratio_{t.long}{sel}) > {t.threshold:g}\n"
        f"and (1 - process_node:sla_commitment_attainment:ratio_{t.short}{sel}) > {t.threshold:g}\n"
        f"and process_node:sla_runs_completed:increase_{t.long}{sel} >= {opts.min_runs}"
    )
    capped = t.factor < t.workbook_factor
    factor_note = (f"{t.factor:g}x (the workbook's {t.workbook_factor:g}x capped at {MAX_ERROR_RATIO:g} / budget: "
                   f"the fastest possible burn is {1 / budget:.4g}x)" if capped else f"{t.factor:g}x")
    # process and node also as rule labels (same values as the series'), so every rule has its own label set
    labels: dict[str, str] = {"severity": t.severity, "process": process, "node": node}
    if owner:
        labels["owner"] = owner
    labels.update({"slo": "commitment_attainment", "window": t.long})
    what = "the order as a whole" if node == ORDER_NODE else f"node {node}"
    dash = f"{opts.grafana_url.rstrip('/')}/d/slamon-node/slamon-node-drill-down?var-process={process}&var-node={node}"
    return {
        "alert": "SLACommitmentBudgetBurn",
        "expr": expr,
        "for": t.for_,
        "labels": labels,
        "annotations": {
            "summary": (f"{process}/{node}: {{{{ $value | humanizePercentage }}}} of completed runs missed the "
                        f"commitment over the last {t.long} (target {_pct(target)}, budget {_pct(budget)})"),
            "description": (
                f"The {_pct(target)} commitment target of {process}, {what}, is burning its {SLO_PERIOD} error budget "
                f"at more than {factor_note} over both {t.long} and {t.short} (error ratio above {_pct(t.threshold)}, "
                f"at least {opts.min_runs} completed runs in {t.long}). At this rate {_pct(t.budget_spent)} of the "
                f"budget goes in {t.long}. Look at the runs that breached (sla.warnings, kind commitment_breached) and "
                f"at the duration distribution on the dashboard; owner: {owner or 'not set in the policy'}."
            ),
            "dashboard": dash,
        },
    }
