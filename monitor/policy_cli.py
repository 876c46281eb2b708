"""`slamon policy`: check a policy directory (and, with the live monitor, publish it)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .core.durations import format_duration
from .core.policies import ORDER_NODE, PolicyError, load_policy_dir


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help="check policies", description="Validate and show policies.")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION")
    psub.required = True
    check = psub.add_parser(
        "check",
        help="validate a policy directory and print the effective limits",
        description="Validate a policy directory (exit 2 with file, field and problem on any error) and print the "
        "effective commitment and tolerance per process, node and segment.",
    )
    check.add_argument("directory", metavar="DIR")
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    try:
        policies, warnings = load_policy_dir(args.directory)
    except PolicyError as exc:
        print(f"policies rejected:\n{exc}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    head = f"{'process':<22} {'ver':>3} {'node':<26} {'segment':<14} {'commitment':>11} {'tolerance':>11} {'early':>9}  owner"
    print(head)
    print("-" * len(head))
    for name, p in sorted(policies.policies.items()):
        rows = []
        if p.order is not None:
            rows.append((ORDER_NODE, "default", p.order))
        rows += [(n, "default", lim) for n, lim in p.nodes.items()]
        rows += [(n, seg, lim) for seg, nodes in p.segments.items() for n, lim in nodes.items()]
        for node, seg, lim in rows:
            early = format_duration(lim.approaching) if lim.approaching is not None else "-"
            print(f"{name:<22} {p.version:>3} {node:<26} {seg:<14} {format_duration(lim.commitment):>11} "
                  f"{format_duration(lim.tolerance):>11} {early:>9}  {lim.owner or '-'}")
        print(f"{'':<22} calendar: {p.calendar_name or '24x7'}" + (f", target {p.target}" if p.target else ""))
    return 0
