"""Workarounds for Faust's table recovery and offsets, kept apart because they use Faust's private API.

- `rewind_uncommitted`: during recovery Faust's fetcher reads stream partitions while the flow is suspended, drops
  those records and moves the position on; afterwards it relies on seek_to_committed(), which aiokafka skips for
  a partition with no committed offset (or offset 0). A worker killed before its first commit would never see
  those events again, so such partitions are sought to their log start.
- `watch_recovery`: table recovery sometimes receives no changelog record at all although records remain
  (faust-streaming #74 family; seen here after a worker joined the group) and resumes only at the next
  rebalance. When recovery makes no progress for a while, the group is asked to rejoin.
- `committed_offset`: Faust's record of the group's committed offset of a partition.
- `discard_stores_ahead`: a RocksDB store that recorded more of its changelog than the changelog holds (cluster or
  topic recreated) makes Faust refuse to start; such a partition's store is deleted and rebuilt instead.
- `raise_producer_buffer`: Faust pauses the stream whenever more than `ProducerBuffer.max_messages` (100) records
  wait in its producer buffer and drains it one record at a time, logging a warning each time.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faust.types import TP

from .. import kafka
from ..settings import Settings
from .fatal import fatal
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


RECOVERY_LOOP = "_restart_recovery"  # Faust's Recovery service task that runs every table recovery


def recovery_loop_ended(recovery: Any) -> bool:
    """Whether Faust's recovery loop has ended while its service was not stopping.

    Each step of a recovery runs under a timeout (`broker_request_timeout`, 90 s); when one takes longer (a broker
    gone in the middle of it), Faust raises ServiceStopped inside the loop, and the loop ends as if the worker were
    stopping. No recovery runs after that: the worker would answer 503 for ever, alive and deaf. (A loop that
    raised crashed its service, and Faust ends the worker for that itself.)"""
    if recovery.should_stop or recovery.crashed:
        return False
    for fut in list(recovery._futures):
        coro = getattr(fut, "__wrapped__", None)
        if getattr(coro, "__name__", None) == RECOVERY_LOOP and not fut.done():
            return False
    return True


async def watch_recovery(app: Any, recovered: Callable[[], bool], stall: float = 15.0) -> None:
    """Ask the group to rejoin whenever table recovery makes no progress for `stall` seconds; end the worker when
    Faust's recovery loop has ended (`recovery_loop_ended`). Runs forever."""
    recovery = app.tables.recovery
    last: int | None = None
    since = time.monotonic()
    while True:
        await asyncio.sleep(2)
        if recovery_loop_ended(recovery) and not app.should_stop:
            fatal("table recovery stopped: one of its steps outlasted broker_request_timeout (the broker went away "
                  "in the middle of it); restarting the worker is the way back")
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


async def discard_stores_ahead(settings: Settings, tabledir: Path, table: str, changelog_topic: str) -> list[int]:
    """Delete the local RocksDB store of every partition whose recorded changelog offset lies at or beyond the
    changelog's last committed record: the cluster or the topic was recreated under it, and Faust would refuse
    to recover (`ConsistencyError`). The partition is then rebuilt from the changelog. Returns the partitions."""
    from faust.stores.rocksdb import RocksDBOptions, Store

    from .transport import committed_ends

    found = {}
    for path in tabledir.glob(f"{table}-*.db"):
        suffix = path.name[len(table) + 1:-3]
        if suffix.isdigit():
            found[int(suffix)] = path
    if not found:
        return []
    probe = kafka.consumer(settings, client_id=f"{settings.app_id}-stores", group_id=None)
    await probe.start()
    try:
        exists = changelog_topic in await probe.topics()
    finally:
        await probe.stop()
    # not waiting for open transactions (committed_ends): no producer of this worker has started to abort a killed
    # worker's; a store ahead of an end read short of a transaction not yet marked is only rebuilt, not lost
    ends = await committed_ends([TP(changelog_topic, p) for p in found], settle_s=0) if exists else {}
    discarded = []
    for p, path in sorted(found.items()):
        db = RocksDBOptions().open(path, read_only=True)
        try:
            raw = db.get(Store.offset_key)
        finally:
            db.close()
        end = ends.get(TP(changelog_topic, p), 0)
        if raw is not None and int(raw) >= end:
            log.warning("the local store of a partition is ahead of its changelog (the cluster or topic was "
                        "recreated); discarding it and rebuilding the partition from the changelog",
                        extra={"partition": p, "store_offset": int(raw), "changelog_end": end, "path": str(path)})
            shutil.rmtree(path)
            discarded.append(p)
    return discarded
