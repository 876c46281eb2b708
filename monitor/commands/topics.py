"""`slamon topics list | apply | schema`: the topic catalogue on the command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys

from ..catalogue import TopicsError, TopicSpec, load_catalogue, load_schema
from ..catalogue.admin import DEFAULT_TIMEOUT_S, ClusterUnreachable, apply_topics
from ..settings import SettingsError
from .common import connections_refused, settings_with_flags


def _specs(args: argparse.Namespace) -> list[TopicSpec]:
    try:
        s = settings_with_flags(args)
    except SettingsError as exc:
        raise TopicsError(str(exc)) from None
    return load_catalogue(s.partitions, s.replication, s.topic_prefix)


def _cmd_list(args: argparse.Namespace) -> int:
    try:
        specs = _specs(args)
    except TopicsError as exc:
        print(f"slamon topics list: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([dataclasses.asdict(s) for s in specs], indent=2))
        return 0
    for s in specs:
        configs = ", ".join(f"{k}={v}" for k, v in s.config.items())
        print(f"{s.name}")
        print(f"    {s.description}")
        print(f"    partitions={s.partitions} replication={s.replication} key={s.key or '-'} schema={s.schema}"
              + (f" co-partitioned with {s.copartition}" if s.copartition else ""))
        print(f"    {configs}")
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    try:
        specs = _specs(args)
    except TopicsError as exc:
        print(f"slamon topics apply: {exc}", file=sys.stderr)
        return 2
    settings = settings_with_flags(args)
    refused = connections_refused(settings)
    if refused:
        print(f"slamon topics apply: {refused}", file=sys.stderr)
        return 2
    try:
        reports = asyncio.run(apply_topics(settings, specs, timeout_s=args.timeout))
    except ClusterUnreachable as exc:
        print(f"slamon topics apply: {exc}", file=sys.stderr)
        return 2
    except TopicsError as exc:
        print(f"slamon topics apply: {exc}", file=sys.stderr)
        return 1
    for report in reports:
        print(report.line())
    bad = [r for r in reports if not r.good]
    if bad:
        print(f"{len(bad)} of {len(reports)} topics differ from the catalogue or failed; nothing existing was changed",
              file=sys.stderr)
        return 1
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(load_schema(args.name), indent=2))
    except TopicsError as exc:
        print(f"slamon topics schema: {exc}", file=sys.stderr)
        return 2
    return 0


def _catalogue_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partitions", type=int, default=None, metavar="N",
                        help="partitions of workflow.events and sla.ticks "
                        "(default: env SLAMON_PARTITIONS, else 6)")
    parser.add_argument("--replication", type=int, default=None, metavar="N",
                        help="replication factor of every topic (default: env SLAMON_REPLICATION, else 1)")
    parser.add_argument("--prefix", default=None, metavar="TEXT",
                        help="prefix prepended to every topic name (default: env SLAMON_TOPIC_PREFIX, else none)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `slamon topics` to the `slamon` command."""
    parser = subparsers.add_parser(
        "topics",
        help="the Kafka topic catalogue: list it, apply it to a cluster, print schemas",
        description="The topics slamon reads and writes (topics/catalogue.yaml in the source, shipped in the "
        "package) and the JSON Schemas of their values.",
    )
    sub = parser.add_subparsers(dest="topics_command", metavar="ACTION")
    sub.required = True

    p_list = sub.add_parser("list", help="print the catalogue",
                            description="Print every topic of the catalogue with its settings.")
    _catalogue_options(p_list)
    p_list.add_argument("--json", action="store_true", help="print JSON instead of text")
    p_list.set_defaults(func=_cmd_list)

    p_apply = sub.add_parser(
        "apply",
        help="create missing topics, report differences of existing ones",
        description="Create the catalogue's missing topics with their configs; compare existing topics "
        "(partitions, replication, configs) with the catalogue and report differences without changing "
        "anything. A topic co-partitioned with another (sla.ticks) follows the partition count the other "
        "actually has. Exit status: 0 when every topic was created or matches, 1 when some topic differs "
        "or could not be created, 2 when Kafka cannot be reached or the arguments are unusable.",
    )
    p_apply.add_argument("--bootstrap", default=None, metavar="HOST:PORT",
                         help="Kafka bootstrap servers (default: env SLAMON_KAFKA_BOOTSTRAP)")
    _catalogue_options(p_apply)
    p_apply.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                         help=f"give up after this long (default {DEFAULT_TIMEOUT_S:g})")
    p_apply.set_defaults(func=_cmd_apply)

    p_schema = sub.add_parser("schema", help="print the JSON Schema of a topic's values",
                              description="Print the JSON Schema (draft 2020-12) of a topic's values.")
    p_schema.add_argument("name", help="topic (sla.warnings), schema file or its stem (sla-warning)")
    p_schema.set_defaults(func=_cmd_schema)
