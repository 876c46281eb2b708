"""Workarounds for Faust's table recovery and offsets, kept apart because they use Faust's private API.

- `rewind_uncommitted`: during recovery Faust's fetcher reads stream partitions while the flow is suspended, drops
  those records and moves the position on; afterwards it relies on seek_to_committed(), which aiokafka skips for
  a partition with no committed offset (or offset 0). A worker killed before its first commit would never see
  those events again, so such partitions are sought to their log start.
- `watch_recovery`: table recovery sometimes receives no changelog record at all although records remain
  (faust-streaming #74 family; seen here after a worker joined the group) and resumes only at the next
  rebalance. When recovery makes no progress for a while, the group is asked to rejoin.
- `committed_offset`: Faust's record of the group's committed offset of a partition.
- `raise_producer_buffer`: Faust pauses the stream whenever more than `ProducerBuffer.max_messages` (100) records
  wait in its producer buffer and drains it one record at a time, logging a warning each time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from faust.types import TP

from .. import kafka
from ..settings import Settings
from .offsets import Offsets

log = logging.getLogger("slamon.worker")


def committed_offset(app: Any, topic: str, partition: int) -> int | None:
    """The group's committed offset (next offset to read) of a partition, as Faust's consumer last saw it."""
    committed = getattr(app.consumer, "_committed_offset", {})
    return committed.get(TP(topic, partition))


def raise_producer_buffer(app: Any, max_messages: int) -> None:
    app.producer.buffer.max_messages = max_messages


async def rewind_uncommitted(app: Any, settings: Settings, topic: str, owned: set[int], offsets: Offsets) -> list[int]:
    """Seek the owned partitions of `topic` without a committed offset to their log start; returns them.
    Runs in the recovery callback, before Faust's own seek."""
    from aiokafka import TopicPartition

    if not owned:
        return []
    tps = [TopicPartition(topic, p) for p in sorted(owned)]
    admin = kafka.admin(settings, client_id=f"{settings.app_id}-rewind")
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=tps)
    finally:
        await admin.close()
    missing = [TP(tp.topic, tp.partition) for tp in tps if tp not in committed or committed[tp].offset <= 0]
    if not missing:
        return []
    await app.consumer.seek_wait(await offsets.beginning(missing))
    return [tp.partition for tp in missing]


async def watch_recovery(app: Any, recovered: Callable[[], bool], stall: float = 15.0) -> None:
    """Ask the group to rejoin whenever table recovery makes no progress for `stall` seconds. Runs forever."""
    recovery = app.tables.recovery
    last: int | None = None
    since = time.monotonic()
    while True:
        await asyncio.sleep(2)
        try:
            remaining = recovery.active_remaining_total() if not recovered() else 0
        except Exception:  # noqa: BLE001 - recovery state between rebalances: just look again
            remaining = 0
        now = time.monotonic()
        if remaining <= 0 or remaining != last:
            last, since = (remaining if remaining > 0 else None), now
            continue
        if now - since >= stall:
            log.warning("table recovery made no progress; asking the group to rejoin",
                        extra={"remaining": remaining, "stalled_s": round(now - since, 1)})
            try:
                await request_rejoin(app)
            except Exception:
                log.exception("could not request a rejoin")
            since = now


async def request_rejoin(app: Any) -> None:
    thread = app.consumer._thread  # Faust runs aiokafka in its own thread: call it there

    async def rejoin() -> None:
        thread._ensure_consumer()._coordinator.request_rejoin()

    await thread.call_thread(rejoin)
