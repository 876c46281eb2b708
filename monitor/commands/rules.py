"""`slamon rules generate`: write the Prometheus rule files of `monitor.rules` for a policy directory.

`--check` compares instead of writing (exit 1 when a file would change), for CI; bad policies exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..rules import Options, budget_of, burn_tiers, generate
from .common import load_or_report


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
