"""`slamon rules`: Prometheus recording and alert rules, generated from the policies so they never drift.

Three files are written (CONTRACTS.md section 6 metrics, DESIGN.md "Prometheus and Alertmanager"):

- `slamon-recording.rules.yml`: rolling attainment per (process, node, segment), (process, node) and process over
  1h, 1d, 7d and 30d, plus the shorter windows the burn-rate alerts need. Always `sum by (...) (increase(x[w]))`:
  increase per series first, then sum, so a worker restart (or a partition moving to another worker) is only a
  counter reset. Ratios are left out (no series) while their denominator is 0, instead of NaN.
- `slamon-slo.rules.yml`: per process that sets `target`: the target as a series, the error budget left over 30d,
  and multiwindow multi-burn-rate alerts (Google SRE workbook, chapter "Alerting on SLOs") per node, with burn
  factors derived from the target so that every emitted factor can fire, and a minimum-volume guard.
- `slamon-health.rules.yml`: the monitor's own health: workers down, no events applied, consumer lag (from
  `sla_ticks_total{caught_up="false"}`), announcement delay of warnings, rejected events.

`slamon rules generate --check` compares instead of writing (exit 1 when a file would change), for CI.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .core.policies import ORDER_NODE, Policy, PolicySet

RECORDING_FILE = "slamon-recording.rules.yml"
SLO_FILE = "slamon-slo.rules.yml"
HEALTH_FILE = "slamon-health.rules.yml"

# Windows reported on dashboards, at every level.
REPORT_WINDOWS = ("1h", "1d", "7d", "30d")
# Extra windows the burn-rate alerts need, recorded at the (process, node) level only.
BURN_ONLY_WINDOWS = ("5m", "30m", "2h", "6h", "3d")
# Windows of a day or more are evaluated every minute: an increase() over 30 days of raw samples is costly, and
# one minute stays well inside Prometheus's 5 minute lookback, so the recorded series never go stale.
SLOW_GROUP_INTERVAL = "1m"
SLOW_WINDOWS = {"6h", "1d", "3d", "7d", "30d"}

LEVELS: dict[str, tuple[str, ...]] = {
    "process_node_segment": ("process", "node", "segment"),
    "process_node": ("process", "node"),
    "process": ("process",),
}

SLO_PERIOD = "30d"
SLO_PERIOD_HOURS = 30 * 24
# The largest error ratio a burn-rate threshold may ask for. The error ratio of a window is at most 1 (every
# completed run missed the commitment), so the fastest possible burn is 1 / budget; a factor at or above that
# can never fire. Capping the threshold at 0.9 keeps every factor reachable with some margin.
MAX_ERROR_RATIO = 0.9


@dataclass(frozen=True)
class Tier:
    """One multiwindow burn-rate alert of the SRE workbook (for a 30 day SLO period)."""

    severity: str
    long: str
    short: str
    factor: float
    for_: str


# The workbook's recommendation: page on 2% of the budget in 1h or 5% in 6h, ticket on 10% in 1d or 3d.
WORKBOOK_TIERS = (
    Tier("page", "1h", "5m", 14.4, "2m"),
    Tier("page", "6h", "30m", 6.0, "2m"),
    Tier("ticket", "1d", "2h", 3.0, "15m"),
    Tier("ticket", "3d", "6h", 1.0, "15m"),
)

_HOURS = {"5m": 5 / 60, "30m": 0.5, "1h": 1, "2h": 2, "6h": 6, "1d": 24, "3d": 72, "7d": 168, "30d": 720}


@dataclass(frozen=True)
class BurnTier:
    """A tier as emitted for one target: the factor actually used and the error-ratio threshold it means."""

    severity: str
    long: str
    short: str
    workbook_factor: float
    factor: float
    threshold: float  # error ratio (share of completed runs that missed the commitment)
    for_: str

    @property
    def budget_spent(self) -> float:
        """Share of the 30 day error budget spent when the long window burns at exactly `factor`."""
        return self.factor * _HOURS[self.long] / SLO_PERIOD_HOURS


@dataclass(frozen=True)
class Options:
    job: str = "slamon"
    min_runs: int = 10
    grafana_url: str = "http://localhost:3000"
    quiet_for: str = "30m"
    lag_share: float = 0.8
    max_warning_delay: float = 10.0
    invalid_share: float = 0.05


def budget_of(target: float) -> float:
    return round(1.0 - target, 10)


def burn_tiers(target: float) -> list[BurnTier]:
    """The workbook tiers for `target`, each factor capped at MAX_ERROR_RATIO / budget.

    A tier whose capped factor is not below the one of a faster tier already emitted adds nothing (it looks for
    the same burn over a longer window) and is left out, so e.g. a 90% target pages at 9x (not 14.4x: the
    fastest possible burn is 10x) and an 80% target has no 6h page (its capped factor 4.5 equals the 1h one).
    """
    budget = budget_of(target)
    cap = MAX_ERROR_RATIO / budget
    out: list[BurnTier] = []
    for t in WORKBOOK_TIERS:
        raw = min(t.factor, cap)
        threshold = round(raw * budget, 6)
        if out and threshold >= out[-1].threshold:
            continue
        out.append(BurnTier(t.severity, t.long, t.short, t.factor, round(raw, 4), threshold, t.for_))
    return out


# ------------------------------------------------------------------------------------------ recording rules


def _record(name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr}


def recording_groups() -> list[dict[str, Any]]:
    groups = []
    for w in REPORT_WINDOWS:
        groups.append(_report_group(w))
    for w in BURN_ONLY_WINDOWS:
        groups.append(_burn_group(w))
    order = {w: i for i, w in enumerate(["5m", "30m", "1h", "2h", "6h", "1d", "3d", "7d", "30d"])}
    groups.sort(key=lambda g: order[g["name"].rsplit("-", 1)[1]])
    return groups


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
    for level, labels in LEVELS.items():
        by = ", ".join(labels)
        # The process level pools node runs only; the order-level run is its own row (node="__order__").
        only = f',node!="{ORDER_NODE}"' if level == "process" else ""
        completed = f"{level}:sla_runs_completed:increase_{w}"
        ended = f"{level}:sla_runs_ended:increase_{w}"
        rules += [
            _record(completed, f'sum by ({by}) ({outcomes}{{state=~"completed_.*"{only}}})'),
            _record(ended, f"sum by ({by}) ({outcomes}{{{only[1:]}}})" if only else f"sum by ({by}) ({outcomes})"),
            _record(f"{level}:sla_commitment_attainment:ratio_{w}",
                    f'sum by ({by}) ({outcomes}{{state="completed_normal"{only}}}) / ({completed} > 0)'),
            _record(f"{level}:sla_tolerance_attainment:ratio_{w}",
                    f'1 - sum by ({by}) ({outcomes}{{state="completed_warning"{only}}}) / ({completed} > 0)'),
            _record(f"{level}:sla_breach_rate:ratio_{w}",
                    f"sum by ({by}) ({breaches}{{{only[1:]}}}) / (sum by ({by}) ({started}{{{only[1:]}}}) > 0)"
                    if only else f"sum by ({by}) ({breaches}) / (sum by ({by}) ({started}) > 0)"),
            _record(f"{level}:sla_cancellation_rate:ratio_{w}",
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


def recorded_names() -> set[str]:
    return {r["record"] for g in recording_groups() for r in g["rules"]}


# ------------------------------------------------------------------------------------------ SLO rules


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


# ------------------------------------------------------------------------------------------ health rules


def health_groups(opts: Options) -> list[dict[str, Any]]:
    job = f'job="{opts.job}"'
    dash = f"{opts.grafana_url.rstrip('/')}/d/slamon-operations/slamon-operations"
    q = opts.quiet_for
    return [{"name": "slamon-health", "rules": [
        {
            "alert": "SlamonNoWorkers",
            "expr": f"sum(up{{{job}}}) == 0 or absent(up{{{job}}})",
            "for": "2m",
            "labels": {"severity": "page", "component": "slamon"},
            "annotations": {
                "summary": "No slamon worker is up: SLA breaches are not being detected",
                "description": f"Prometheus reaches no target of job {opts.job}. Nothing announces breaches until a "
                               "worker runs again (missed crossings are announced late, when it does). Check the "
                               "worker processes or containers and their logs.",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonWorkerDown",
            "expr": f"up{{{job}}} == 0",
            "for": "5m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": "slamon worker {{ $labels.instance }} is down",
                "description": "Prometheus cannot scrape {{ $labels.instance }}. The other workers take its "
                               "partitions over after SLAMON_SESSION_TIMEOUT; with fewer workers each has more "
                               "partitions to follow. Check the process and its log (JSON lines on stderr).",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonNoEventsProcessed",
            "expr": (f"(sum(increase(sla_events_total{{{job}}}[{q}])) or vector(0)) == 0\n"
                     f"and on() sum(up{{{job}}}) > 0"),
            "for": "5m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": f"slamon workers are up but applied no workflow event in {q}",
                "description": "Either nothing is produced to workflow.events (check the producers), or every event "
                               "is rejected (see sla_invalid_events_total and sla.deadletter), or the workers are "
                               "not consuming (check /readyz and the consumer group). Silence this alert for "
                               "processes that are legitimately quiet at night.",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonConsumerLagging",
            "expr": (f'sum by (job, instance) (rate(sla_ticks_total{{{job},caught_up="false"}}[5m]))\n'
                     f"/ sum by (job, instance) (rate(sla_ticks_total{{{job}}}[5m])) > {opts.lag_share:g}"),
            "for": "10m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": "slamon worker {{ $labels.instance }} is behind on events "
                           "({{ $value | humanizePercentage }} of its ticks found unapplied events)",
                "description": "A tick that finds its partition behind holds that partition's clock back, so "
                               "breach warnings wait (they are never wrong, only late). Sustained, the worker "
                               "cannot keep up: add partitions and workers, or look for a slow sink or broker.",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonWarningDelayHigh",
            "expr": (f"histogram_quantile(0.9, sum by (le) (rate(sla_warning_delay_seconds_bucket{{{job}}}[15m])))"
                     f" > {opts.max_warning_delay:g}"),
            "for": "10m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": "slamon announces breaches late: p90 delay {{ $value | humanizeDuration }} "
                           "after the crossing instant",
                "description": f"The 90th percentile of detected_at - crossed_at exceeds {opts.max_warning_delay:g}s "
                               "(normally about one or two SLAMON_TICK_INTERVAL). Look at the lag signal "
                               "(sla_ticks_total{caught_up=\"false\"}) and at sla_tick_delay_seconds (overload).",
                "dashboard": dash,
            },
        },
        {
            "alert": "SlamonInvalidEventsHigh",
            "expr": (f"sum(rate(sla_invalid_events_total{{{job}}}[15m]))\n"
                     f"/ (sum(rate(sla_events_total{{{job}}}[15m])) + sum(rate(sla_invalid_events_total{{{job}}}[15m])))"
                     f" > {opts.invalid_share:g}"),
            "for": "15m",
            "labels": {"severity": "ticket", "component": "slamon"},
            "annotations": {
                "summary": "{{ $value | humanizePercentage }} of workflow events are rejected",
                "description": "Rejected events go to sla.deadletter with their reason and original bytes; "
                               "sla_invalid_events_total{reason} says which check fails (malformed, unknown_process, "
                               "unknown_node, out_of_order, ...). Usually a producer or a policy changed.",
                "dashboard": dash,
            },
        },
    ]}]


# ------------------------------------------------------------------------------------------ files


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, s: str) -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)


_Dumper.add_representer(str, _str)


def render(groups: list[dict[str, Any]], header: str) -> str:
    body = yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return header + body


def generate(policies: PolicySet, command: str, opts: Options | None = None) -> dict[str, str]:
    """File name -> text of the three rule files."""
    opts = opts or Options()
    head = (f"# Generated by `{command}`.\n"
            "# Do not edit by hand: change the policies or the options and generate again.\n")
    slo_note = "".join(
        f"#   {name}: target {p.target:g}, budget {budget_of(p.target):g}, fastest possible burn "
        f"{1 / budget_of(p.target):.4g}x; tiers "
        + ", ".join(f"{t.severity} {t.long}/{t.short} at {t.factor:g}x (error ratio > {t.threshold:g})"
                    for t in burn_tiers(p.target)) + "\n"
        for name, p in sorted(policies.policies.items()) if p.target is not None
    ) or "#   (no policy sets a target: no burn-rate alerts)\n"
    return {
        RECORDING_FILE: render(recording_groups(), head + (
            "# Rolling attainment: sum by (...) (increase(counter[w])), increase per series first, so a worker\n"
            "# restart is only a counter reset. 30d windows need --storage.tsdb.retention.time above 31d.\n")),
        SLO_FILE: render(slo_groups(policies, opts), head + (
            f"# Multiwindow multi-burn-rate alerts on commitment attainment ({SLO_PERIOD} error budget = 1 - target),\n"
            f"# factors capped at {MAX_ERROR_RATIO:g} / budget so that every one can fire:\n") + slo_note),
        HEALTH_FILE: render(health_groups(opts), head),
    }


def _command_line(args: argparse.Namespace) -> str:
    parts = ["slamon rules generate", f"--policies {args.policies}"]
    defaults = Options()
    for flag, attr in (("--job", "job"), ("--min-runs", "min_runs"), ("--grafana-url", "grafana_url"),
                       ("--quiet-for", "quiet_for"), ("--lag-share", "lag_share"),
                       ("--max-warning-delay", "max_warning_delay"), ("--invalid-share", "invalid_share")):
        value = getattr(args, attr)
        if value != getattr(defaults, attr):
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def _generate(args: argparse.Namespace) -> int:
    from .policy_cli import load_or_report

    policies = load_or_report(args.policies, "slamon rules generate")
    if policies is None:
        return 2
    opts = Options(job=args.job, min_runs=args.min_runs, grafana_url=args.grafana_url, quiet_for=args.quiet_for,
                   lag_share=args.lag_share, max_warning_delay=args.max_warning_delay,
                   invalid_share=args.invalid_share)
    files = generate(policies, _command_line(args), opts)
    out = Path(args.out)
    stale = []
    for name, text in files.items():
        path = out / name
        if args.check:
            current = path.read_text(encoding="utf-8") if path.is_file() else None
            if current != text:
                stale.append(str(path))
            continue
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        n = text.count("\n  - record: ") + text.count("\n  - alert: ")
        print(f"wrote {path} ({n} rules)")
    if args.check:
        if stale:
            print("out of date (run `" + _command_line(args) + f" --out {args.out}`): " + ", ".join(stale),
                  file=sys.stderr)
            return 1
        print(f"{out}: up to date")
        return 0
    for name, p in sorted(policies.policies.items()):
        if p.target is None:
            print(f"{name}: no target, no burn-rate alerts")
            continue
        tiers = "; ".join(f"{t.severity} {t.long}/{t.short} {t.factor:g}x (error ratio > {t.threshold:g})"
                          for t in burn_tiers(p.target))
        print(f"{name}: target {p.target:g}, budget {budget_of(p.target):g}: {tiers}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "rules",
        help="generate Prometheus recording and alert rules from the policies",
        description="Prometheus rules for slamon's metrics, generated from a policy directory so that they never "
        "drift from it.",
    )
    rsub = p.add_subparsers(dest="rules_command", metavar="ACTION")
    rsub.required = True
    g = rsub.add_parser(
        "generate",
        help="write the recording, SLO burn-rate and monitor-health rule files",
        description="Write three Prometheus rule files: rolling attainment recording rules (1h, 1d, 7d, 30d; per "
        "process, node and segment), multiwindow multi-burn-rate alerts for every process whose policy sets "
        "`target` (factors derived from the target: error budget = 1 - target, factors capped at 0.9 / budget so "
        "each can fire), and monitor-health alerts. 30d windows need Prometheus retention above 31 days "
        "(--storage.tsdb.retention.time=32d or more).",
    )
    g.add_argument("--policies", required=True, metavar="DIR", help="policy directory (as for slamon policy check)")
    g.add_argument("--out", default="deploy/prometheus/rules", metavar="DIR",
                   help="directory of the rule files (default: deploy/prometheus/rules)")
    g.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if any file in --out differs from what would be generated")
    d = Options()
    g.add_argument("--job", default=d.job, help=f"Prometheus job name of the workers (default: {d.job})")
    g.add_argument("--min-runs", type=int, default=d.min_runs, metavar="N",
                   help=f"burn-rate alerts need at least N completed runs in the long window (default: {d.min_runs})")
    g.add_argument("--grafana-url", default=d.grafana_url, metavar="URL",
                   help=f"Grafana base URL for dashboard links in annotations (default: {d.grafana_url})")
    g.add_argument("--quiet-for", default=d.quiet_for, metavar="DURATION",
                   help=f"SlamonNoEventsProcessed: no event applied for this long (default: {d.quiet_for})")
    g.add_argument("--lag-share", type=float, default=d.lag_share, metavar="F",
                   help=f"SlamonConsumerLagging: share of ticks that found their partition behind (default: "
                   f"{d.lag_share:g})")
    g.add_argument("--max-warning-delay", type=float, default=d.max_warning_delay, metavar="SECONDS",
                   help=f"SlamonWarningDelayHigh: p90 announcement delay (default: {d.max_warning_delay:g})")
    g.add_argument("--invalid-share", type=float, default=d.invalid_share, metavar="F",
                   help=f"SlamonInvalidEventsHigh: share of rejected events (default: {d.invalid_share:g})")
    g.set_defaults(func=_generate)
