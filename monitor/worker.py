"""`slamon worker`: run one monitor worker (configuration from SLAMON_* environment variables)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from .settings import Settings, settings_help

log = logging.getLogger("slamon.worker")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "worker",
        help="run one live monitor worker",
        description="Run one live monitor worker: consume workflow.events, announce crossings on sla.warnings the "
        "moment they happen, publish outcomes, dead letters and Prometheus metrics. Workers with the same "
        "SLAMON_APP_ID share the partitions. Stops gracefully on SIGTERM or Ctrl-C.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=_run)


async def prepare(settings: Settings) -> int:
    """Create missing topics, check co-partitioning, publish SLAMON_POLICIES if given. Returns the partition
    count of workflow.events."""
    from .core.policies import load_policy_dir
    from .stream.policyfeed import policy_messages, publish
    from .topics import apply_topics, load_catalogue

    specs = load_catalogue(settings.partitions, settings.replication, settings.topic_prefix)
    reports = await apply_topics(settings.kafka_bootstrap, specs)
    for r in reports:
        if not r.good:
            log.warning("topic differs from the catalogue", extra={"report": r.line()})
    partitions = await _partition_counts(settings.kafka_bootstrap, [s.name for s in specs])
    by_logical = {s.logical_name: s.name for s in specs}
    events, ticks = partitions[by_logical["workflow.events"]], partitions[by_logical["sla.ticks"]]
    if events != ticks:
        raise SystemExit(
            f"slamon worker: {by_logical['sla.ticks']} has {ticks} partitions but {by_logical['workflow.events']} "
            f"has {events}; they must be equal (a tick for partition p is processed with the events of p). "
            f"Recreate {by_logical['sla.ticks']} with {events} partitions."
        )
    if settings.policies:
        policies, _ = load_policy_dir(settings.policies)
        await publish(settings.kafka_bootstrap, by_logical["sla.policies"], policy_messages(policies))
        log.info("published policies", extra={"directory": settings.policies,
                                                "processes": sorted(policies.policies)})
    return events


async def _partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        out = {}
        for name in names:
            parts = consumer.partitions_for_topic(name)
            while parts is None:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(name)
            out[name] = len(parts)
        return out
    finally:
        await consumer.stop()


def _run(args: argparse.Namespace) -> int:
    from .core.policies import PolicyError
    from .settings import settings_for

    settings = settings_for("slamon worker")
    if settings is None:
        return 2
    try:
        partitions = asyncio.run(asyncio.wait_for(prepare(settings), 120))
    except PolicyError as exc:
        print(f"slamon worker: SLAMON_POLICIES rejected:\n{exc}", file=sys.stderr)
        return 2
    except (TimeoutError, OSError) as exc:
        print(f"slamon worker: cannot prepare topics at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    import faust

    from .logs import logging_config
    from .stream.app import Monitor

    monitor = Monitor(settings, partitions)
    log.info("starting worker", extra={"app_id": settings.app_id, "partitions": partitions,
                                        "web": f"http://{settings.web_host}:{settings.web_port}/metrics"})
    worker = faust.Worker(monitor.app, loglevel=settings.log_level, logging_config=logging_config(settings.log_level),
                          quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
