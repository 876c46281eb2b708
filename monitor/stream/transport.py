"""Faust's aiokafka transport, with a consumer that reads `read_committed`, registered under the URL scheme
`slamon://` the way Faust registers transport drivers (`faust.transport.drivers.TRANSPORTS`).

The order table's changelog, and every output, are written in Kafka transactions (see `writer.py`); a worker that
was fenced off, or killed in the middle of a batch, leaves aborted records behind. Table recovery must not apply
them, so the worker's consumer (which Faust also uses to read changelogs) reads only committed records. Faust sets
`read_committed` only under its own `exactly_once` guarantee, which this app does not use (it keys transactions by
destination partition, which does not fit outputs to other topics), hence this driver.

Recovery also needs the offset up to which a changelog partition holds data: Faust takes the end offset minus one,
but in a transactional partition the last offset is a commit marker, which no consumer ever receives, and recovery
would wait for it forever. `highwaters` here returns one past the last committed record instead.

With static membership (SLAMON_GROUP_INSTANCE_ID), a worker whose instance id another worker joined with must stop.
aiokafka's heartbeats do not name the instance id (Heartbeat v1), so the broker answers such a worker
UNKNOWN_MEMBER_ID, and aiokafka rejoins with the instance id, taking it back: the two workers then take it from each
other every heartbeat until one of them happens to be fenced by a transaction. Here the heartbeats name it
(Heartbeat v3), and the broker's FENCED_INSTANCE_ID ends the worker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.group import HeartbeatRequest, HeartbeatRequest_v1, HeartbeatResponse_v1
from aiokafka.protocol.types import Int32, Schema, String
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from .. import kafka
from ..settings import Settings
from . import fastfetch
from .fatal import fatal

log = logging.getLogger("slamon.transport")
SCHEME = "slamon"
_settings: Settings | None = None  # set by register(): the connection of the helper consumer below
fast_fetch = True  # see fastfetch.py
FENCED_INSTANCE_ID = 82  # Kafka's error code; aiokafka has no error class for it
SETTLE_S = 30.0  # see committed_ends; below Faust's broker_request_timeout (90 s), which bounds the recovery step
SETTLE_POLL_S = 0.1


class ReadCommittedConsumerThread(driver.AIOKafkaConsumerThread):
    async def on_start(self) -> None:
        await super().on_start()
        _fail_when_fenced(self._consumer._coordinator)
        self._watch = asyncio.ensure_future(self._watch_group())

    async def _watch_group(self) -> None:
        """End the worker when the group coordinator reports an error it will not retry (a session timeout the
        broker refuses, a denied group, ...): aiokafka would only raise it from the next fetch, which never comes
        before the group is joined, and the worker would wait forever, alive and deaf."""
        while True:
            await asyncio.sleep(1.0)
            coordinator = getattr(self._consumer, "_coordinator", None)
            if coordinator is None:
                continue
            try:
                coordinator.check_errors()
            except Exception as exc:  # noqa: BLE001 - every error pushed to the user here is final
                fatal("the consumer group cannot be joined" + _why(exc, coordinator), exc)

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands the isolation level to its fetcher in start(), which comes later
        consumer._isolation_level = "read_committed"
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> dict[TP, int]:
        return await committed_ends(partitions)


def _why(exc: BaseException, coordinator: Any) -> str:
    """What a group error means when the bare error does not say: a static member that came back within the session
    timeout is handed the assignment of its previous session, and Faust's assignor refuses (asserts) one that was
    made for another web address of the worker."""
    instance_id = getattr(coordinator, "_group_instance_id", None)
    if instance_id and (isinstance(exc, AssertionError) or isinstance(exc.__cause__, AssertionError)):
        return (f": the group handed this static member (group instance id {instance_id}) the assignment of its "
                "previous session, which was made for another web address of the worker (SLAMON_WEB_HOST or "
                "SLAMON_WEB_PORT changed?); start it with the address it had, or wait until "
                "SLAMON_SESSION_TIMEOUT has passed since the previous one stopped")
    return ""


class _HeartbeatResponse_v3(Response):
    API_KEY = 12
    API_VERSION = 3
    SCHEMA = HeartbeatResponse_v1.SCHEMA


class _HeartbeatRequest_v3(RequestStruct):
    API_KEY = 12
    API_VERSION = 3
    RESPONSE_TYPE = _HeartbeatResponse_v3
    SCHEMA = Schema(("group", String("utf-8")), ("generation_id", Int32), ("member_id", String("utf-8")),
                    ("group_instance_id", String("utf-8")))


class _StaticHeartbeatRequest(Request[HeartbeatRequest_v1 | _HeartbeatRequest_v3]):
    """aiokafka's heartbeat with the group instance id (v3, Kafka 2.3+; v1 without it for older brokers)."""

    API_KEY = 12

    def __init__(self, heartbeat: HeartbeatRequest, group_instance_id: str):
        self._args = (heartbeat._group, heartbeat._generation_id, heartbeat._member_id)
        self._group_instance_id = group_instance_id

    def build(self, request_struct_class: Any) -> Any:
        if request_struct_class.API_VERSION >= 3:
            return request_struct_class(*self._args, self._group_instance_id)
        return request_struct_class(*self._args)


def _fail_when_fenced(coordinator: Any) -> None:
    """End the worker when the broker says another consumer joined with its group instance id (see the module's
    docstring): its heartbeats name the id, and any group response FENCED_INSTANCE_ID is fatal."""
    instance_id = getattr(coordinator, "_group_instance_id", None)
    if not instance_id:
        return
    send = coordinator._send_req

    async def send_req(request: Any) -> Any:
        if isinstance(request, HeartbeatRequest):
            request = _StaticHeartbeatRequest(request, instance_id)
        response = await send(request)
        if getattr(response, "error_code", None) == FENCED_INSTANCE_ID:
            fatal(f"fenced: another worker joined with group instance id {instance_id}")
        return response

    coordinator._send_req = send_req


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        if fast_fetch:
            return await fastfetch.drain_messages(self, fetcher)
        return await super()._drain_messages(fetcher)


class Transport(driver.Transport):
    Consumer = Consumer


def register(settings: Settings) -> None:
    """Make `slamon://host:port` URLs use this transport."""
    global _settings, fast_fetch
    _settings = settings
    fast_fetch = bool(settings.fast_fetch)
    TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")


async def committed_ends(partitions: list[TP], window: int = 64, settle_s: float = SETTLE_S) -> dict[TP, int]:
    """One past the offset of the last committed record of each partition (its start when it has none).

    A read_committed consumer sees a partition up to its last stable offset (LSO): the first offset of its oldest
    transaction not yet ended. That is not always the end of what was committed: the broker answers a producer's
    commit once the transaction log records it, and writes the commit markers that move the LSO after that. A
    worker whose broker was paused (or slow) right after it committed has applied, and recorded in its store, a
    transaction the LSO does not show yet; taking the LSO for the end, table recovery found the store ahead of its
    changelog and ended the worker (Faust's ConsistencyError). So while a partition's LSO is short of its high
    watermark, this waits (up to `settle_s`) for the transaction holding it to end: its markers written, or it
    aborted (the partition's new transactional producer aborts a dead owner's open transaction when it starts).
    A transaction still open then (a live producer's, on a standby partition) is not committed: its start is the
    end, as before."""
    from aiokafka import TopicPartition

    assert _settings is not None, "transport.register(settings) first"
    tps = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
    if not tps:
        return {}
    consumer = kafka.consumer(_settings, client_id=f"{_settings.app_id}-recovery", group_id=None,
                              enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)  # read_committed: the last stable offset
        if settle_s > 0:
            ends = await _settled(consumer, tps, ends, settle_s)
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        out = {}
        for tp in tps:
            out[TP(tp.topic, tp.partition)] = await _last_committed_end(consumer, tp, begins[tp], ends[tp], window)
        return out
    finally:
        await consumer.stop()


async def _settled(consumer: Any, tps: list[Any], ends: dict[Any, int], settle_s: float) -> dict[Any, int]:
    """`ends` (LSOs) again once the transaction that held each below its high watermark has ended, or after
    `settle_s`."""
    assert _settings is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_s
    uncommitted = kafka.consumer(_settings, client_id=f"{_settings.app_id}-recovery-hw", group_id=None,
                                 enable_auto_commit=False, isolation_level="read_uncommitted")
    await uncommitted.start()
    try:
        highs = await uncommitted.end_offsets(tps)
    finally:
        await uncommitted.stop()
    ends = dict(ends)
    held = {tp: ends[tp] for tp in tps if ends[tp] < highs[tp]}
    while held and loop.time() < deadline:
        await asyncio.sleep(SETTLE_POLL_S)
        now = await consumer.end_offsets(list(held))
        ends.update(now)
        held = {tp: first for tp, first in held.items() if now[tp] == first}
    if held:
        log.warning("a changelog partition has a transaction open; recovering up to its start",
                    extra={"partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in held),
                           "waited_s": settle_s})
    return ends


async def _last_committed_end(consumer: Any, tp: Any, begin: int, end: int, window: int) -> int:
    while end > begin:
        start = max(begin, end - window)
        consumer.seek(tp, start)
        last = None
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for m in batch.get(tp, []):
                if m.offset < end:
                    last = m.offset
        if last is not None:
            return last + 1
        if start == begin:
            break
        window *= 8
    return begin
