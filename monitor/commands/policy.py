"""`slamon policy check | apply`: validate a policy directory, print the effective limits, publish it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ..catalogue import POLICIES, topic_names
from ..core.durations import format_duration
from ..core.policies import Limits, Policy
from ..core.segments import matrix_keys, matrix_rows, matrix_size
from ..core.thresholds import threshold_label
from ..core.vocabulary import ORDER_NODE
from ..settings import SettingsError
from .common import connections_refused, load_or_report, settings_with_flags


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help="check policies", description="Validate and show policies.")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION")
    psub.required = True
    check = psub.add_parser(
        "check",
        help="validate a policy directory and print the effective limits",
        description="Validate a policy directory (exit 2 with file, field and problem on any error) and print the "
        "effective commitment, tolerance, calendar and early warnings per process, node and segment, the status "
        "mapping, and which segment each combination of the values `match:` conditions name falls into.",
    )
    check.add_argument("directory", metavar="DIR")
    check.set_defaults(func=_check)
    apply = psub.add_parser(
        "apply",
        help="validate a policy directory and publish it to sla.policies",
        description="Validate a policy directory and publish one message per process to the compacted topic "
        "sla.policies; running workers pick the change up without restart (runs in flight keep their version). "
        "Nothing is published when any file is invalid (exit 2).",
    )
    apply.add_argument("directory", metavar="DIR")
    apply.add_argument("--bootstrap", default=None,
                       help="Kafka bootstrap servers (default: $SLAMON_KAFKA_BOOTSTRAP, else 127.0.0.1:9092)")
    apply.add_argument("--prefix", default=None, help="topic name prefix (default: $SLAMON_TOPIC_PREFIX)")
    apply.set_defaults(func=_apply)


MATRIX_ROWS = 200  # the segment matrix printed per process, at most


def _check(args: argparse.Namespace) -> int:
    policies = load_or_report(args.directory, "slamon policy check")
    if policies is None:
        return 2
    head = (f"{'process':<22} {'ver':>3} {'node':<26} {'segment':<14} {'commitment':>11} {'tolerance':>11} "
            f"{'calendar':<16} {'owner':<16} early warnings")
    print(head)
    print("-" * len(head))
    for name, p in sorted(policies.policies.items()):
        rows = []
        if p.order is not None:
            rows.append((ORDER_NODE, "default", p.order))
            rows += [(ORDER_NODE, seg, lim) for seg, lim in p.order_segments.items()]
        rows += [(n, "default", lim) for n, lim in p.nodes.items()]
        rows += [(n, seg, nodes[n]) for seg, nodes in p.segments.items() for n in p.nodes if n in nodes]
        for node, seg, lim in rows:
            print(f"{name:<22} {p.version:>3} {node:<26} {seg:<14} {format_duration(lim.commitment):>11} "
                  f"{format_duration(lim.tolerance):>11} {lim.calendar_name or '24x7':<16} {lim.owner or '-':<16} "
                  f"{_early(lim)}")
        print(f"{'':<22} calendar: {p.calendar_name or '24x7'}" + (f", target {p.target}" if p.target else ""))
        if p.statuses is not None:
            mapped = "; ".join(f"{status!r} {t.describe()}" for status, t in p.statuses.items())
            print(f"{'':<22} statuses: {mapped or 'none mapped'}")
        if p.matchers:
            _matrix(p)
    return 0


def _early(lim: Limits) -> str:
    """The early warnings of a row: the instant of a single one, or `p%=instant` of each of a list."""
    if lim.grades is not None:
        return " ".join(f"{threshold_label(f)}%={format_duration(a)}" for f, a in lim.grades)
    return format_duration(lim.approaching) if lim.approaching is not None else "-"


def _matrix(p: Policy) -> None:
    """Which segment each combination of the values the `match:` conditions list falls into (`*`: any other value,
    or absent), first match in file order."""
    keys = [key for key, _ in matrix_keys(p.matchers)]
    widths = [max(len(k), *(len(v) for v in values), 1) for k, values in matrix_keys(p.matchers)]
    total = matrix_size(p.matchers)
    print(f"{'':<22} segments chosen by match (first match in file order; * = any other value or absent):")
    print(f"{'':<24}" + "  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)) + "  -> segment")
    for combo, segment in matrix_rows(p.matchers, p.segment_of, MATRIX_ROWS):
        print(f"{'':<24}" + "  ".join(v.ljust(w) for v, w in zip(combo, widths, strict=True)) + f"  -> {segment}")
    if total > MATRIX_ROWS:
        print(f"{'':<24}... and {total - MATRIX_ROWS} more combinations")


def _apply(args: argparse.Namespace) -> int:
    from ..stream.preflight import SetupError, publish_policies

    policies = load_or_report(args.directory, "slamon policy apply", "policies rejected, nothing published")
    if policies is None:
        return 2
    try:
        settings = settings_with_flags(args)
    except SettingsError as exc:
        print(f"slamon policy apply: {exc}", file=sys.stderr)
        return 2
    topic = topic_names(settings.topic_prefix)[POLICIES]
    refused = connections_refused(settings)
    if refused:
        print(f"slamon policy apply: nothing published: {refused}", file=sys.stderr)
        return 1
    try:
        asyncio.run(asyncio.wait_for(publish_policies(settings, policies), 60))
    except SetupError as exc:
        print(f"slamon policy apply: nothing published: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - any failure to reach Kafka is reported the same way
        print(f"cannot publish to {topic} at {settings.kafka_bootstrap}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    for name, p in sorted(policies.policies.items()):
        print(f"published {name} version {p.version} to {topic}")
    return 0
