"""Workflow events read back from Kafka for reports and backtests (`--from-kafka`): every partition of
`workflow.events` from the earliest retained offset up to its end when the read starts, merged by event time.

The reader joins no consumer group and commits nothing: it assigns itself every partition, notes the end offsets
(read_committed: the last stable offsets), and reads until each partition's position reaches its end. The events
are decoded as the replay decodes file lines (a value that is not an event is `malformed`), held in memory, and
returned in time order (stable: a partition's offset order at ties), the malformed first, as a file's replay
would order them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .catalogue import EVENTS, topic_names
from .core.events import Event, Malformed, decode_event
from .core.replay import Item
from .eventlog import Progress
from .kafka import consumer, partitions_of
from .settings import Settings

METADATA_TIMEOUT_S = 30  # how long the topic may take to show in the cluster's metadata


class KafkaReadError(Exception):
    """The events could not be read (broker unreachable, topic missing); the message says which and where."""


def _decode(value: bytes | None) -> Item:
    if value is None:
        return Malformed("a record without a value")
    try:
        return decode_event(value)
    except Malformed as exc:
        return exc


async def _read(settings: Settings, topic: str, progress: Progress | None) -> list[Item]:
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    client = consumer(settings, client_id="slamon-reader", group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        await client.start()
    except KafkaError as exc:
        await client.stop()
        raise KafkaReadError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from None
    try:
        try:
            parts = await asyncio.wait_for(partitions_of(client, topic), METADATA_TIMEOUT_S)
        except TimeoutError:
            raise KafkaReadError(f"no topic {topic} at {settings.kafka_bootstrap}") from None
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        client.assign(tps)
        await client.seek_to_beginning(*tps)
        begin = await client.beginning_offsets(tps)
        end = await client.end_offsets(tps)
        total = sum(end[tp] - begin[tp] for tp in tps)
        records: list[tuple[int, Any]] = []  # (partition, record) in offset order per partition
        pending = {tp for tp in tps if end[tp] > begin[tp]}
        while pending:
            batches = await client.getmany(*pending, timeout_ms=1000)
            for tp, batch in batches.items():
                records.extend((tp.partition, r) for r in batch if r.offset < end[tp])
            for tp in list(pending):
                if await client.position(tp) >= end[tp]:
                    pending.discard(tp)
            if progress is not None:
                progress.update(len(records), total)
    except KafkaError as exc:
        raise KafkaReadError(f"reading {topic} at {settings.kafka_bootstrap} failed: {exc}") from None
    finally:
        await client.stop()
    records.sort(key=lambda pr: pr[0])  # partition by partition, each in offset order (sort is stable)
    items = [_decode(r.value) for _, r in records]
    events = sorted((i for i in items if type(i) is Event), key=lambda e: e.at)
    return [*(i for i in items if type(i) is not Event), *events]


def read_kafka_events(settings: Settings, progress: Progress | None = None) -> list[Item]:
    """Every record of `workflow.events` (under the settings' topic prefix) now in the log, as replay items in
    time order. Raises KafkaReadError."""
    topic = topic_names(settings.topic_prefix)[EVENTS]
    try:
        return asyncio.run(_read(settings, topic, progress))
    finally:
        if progress is not None:
            progress.done()
