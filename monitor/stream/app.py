"""The Faust application: one agent over `workflow.events` + `sla.ticks`, the order table, the tick timer.

Everything that decides something lives in `Processor` (and the core); this module only wires it to Faust:

- the agent (concurrency 1) reads both topics; `sla.ticks` has as many partitions as `workflow.events`, so
  Faust's assignor co-partitions them and a tick for partition p is processed in p's context, where p's
  part of the table may be written (its changelog record goes to partition p);
- the timer sends each partition this worker owns a tick with the wall clock and the partition's end offset;
- when table recovery completes (streams still paused), the deadline heaps and gauges are rebuilt; on
  revocation they are dropped;
- /metrics, /healthz and /readyz on the web port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import orjson
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..api import QueryApi
from ..core.engine import Engine
from ..core.instants import US, format_instant
from ..core.policies import PolicySet
from ..logs import logging_config
from ..settings import Settings
from ..topics import load_catalogue
from .metrics import MonitorMetrics
from .policyfeed import PolicyFeed
from .processor import Processor

log = logging.getLogger("slamon.worker")

# Faust pauses the stream whenever more than `ProducerBuffer.max_messages` (100) records wait in its producer
# buffer and drains it one record at a time, logging a warning each time: under load, every few hundred events.
PRODUCER_BUFFER_MESSAGES = 10_000


def wall_clock_us() -> int:
    return time.time_ns() // 1000


def topic_names(settings: Settings) -> dict[str, str]:
    specs = load_catalogue(settings.partitions, settings.replication, settings.topic_prefix)
    return {s.logical_name: s.name for s in specs}


class Monitor:
    def __init__(self, settings: Settings, partitions: int):
        self.settings = settings
        self.names = names = topic_names(settings)
        self.events_topic = names["workflow.events"]
        self.ticks_topic = names["sla.ticks"]
        rocksdb = settings.store.startswith("rocksdb")
        self.app = app = faust.App(
            settings.app_id,
            broker=";".join(f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")),
            store=settings.store,
            datadir=settings.data_dir,
            processing_guarantee="at_least_once",
            topic_partitions=partitions,
            topic_replication_factor=settings.replication,
            topic_disable_leader=True,
            table_standby_replicas=settings.standby_replicas,
            consumer_auto_offset_reset="earliest",
            broker_max_poll_records=1000,
            stream_buffer_maxsize=16384,
            broker_commit_interval=1.0,
            stream_recovery_delay=0.0,
            broker_session_timeout=settings.session_timeout,
            broker_heartbeat_interval=max(settings.session_timeout / 10, 0.5),
            producer_linger=0.05,
            producer_max_batch_size=262144,
            producer_compression_type="lz4" if _has_lz4() else None,
            web_port=settings.web_port,
            web_bind=settings.web_host,
            web_host=settings.web_host,
            web_tables_enabled=False,
            logging_config=logging_config(settings.log_level),
            key_serializer="raw",
            value_serializer="raw",
        )
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.source = app.topic(self.events_topic, self.ticks_topic, **raw)
        self.ticks = app.topic(self.ticks_topic, **raw)
        self.outputs = {k: app.topic(names[f"sla.{k}"], **raw) for k in ("warnings", "outcomes", "deadletter")}
        self.table = app.Table(
            # bytes key and value types make Faust use the raw codec for the changelog too (else JSON)
            "orders", default=None, partitions=partitions, key_type=bytes, value_type=bytes,
            options={"block_cache_size": 64 * 2**20, "write_buffer_size": 16 * 2**20} if rocksdb else None,
        )
        self.metrics = MonitorMetrics()
        self.engine = Engine(PolicySet({}, {}))
        self.processor = Processor(self.engine, self.table, self._emit, self.metrics, wall_clock_us,
                                   int(settings.closed_retention * US), self.events_topic)
        self.policy_feed = PolicyFeed(settings.kafka_bootstrap, names["sla.policies"], self._policies_changed)
        self.recovered = False
        self._offsets_client: Any = None  # own connection for end offsets (see send_ticks)
        self._feed_task: asyncio.Task | None = None
        self._watch_task: asyncio.Task | None = None
        self.api = QueryApi(settings, self.table, self.engine, partitions, self._owned, lambda: self.recovered,
                            wall_clock_us)
        self._wire()

    # -------------------------------------------------------------- plumbing

    def _emit(self, output: str, key: bytes | None, value: bytes) -> None:
        self.outputs[output].send_soon(key=key, value=value)

    def _policies_changed(self, policies: PolicySet) -> None:
        self.engine.set_policies(policies)
        self.metrics.prime(policies)

    def _owned(self) -> set[int]:
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.events_topic}

    def _committed(self, partition: int) -> int | None:
        # Faust's record of the group's committed offset (next offset to read) of an events partition.
        committed = getattr(self.app.consumer, "_committed_offset", {})
        return committed.get(TP(self.events_topic, partition))

    async def _end_offsets(self, tps: list[TP]) -> dict[TP, int]:
        # Not app.consumer.highwaters(): Faust's consumer long-polls with fetch_max_wait_ms=1500 and Kafka answers
        # one request per connection at a time, so the offsets request would wait behind the poll.
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self._offsets_client is None:  # created on first use, in the worker's loop
            client = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
                                      client_id=f"{self.settings.app_id}-ticks")
            await client.start()
            self._offsets_client = client
        if not tps:
            return {}
        ends = await self._offsets_client.end_offsets([TopicPartition(tp.topic, tp.partition) for tp in tps])
        return {TP(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def _close_offsets_client(self) -> None:
        client, self._offsets_client = self._offsets_client, None
        if client is not None:
            await client.stop()

    async def _rewind_uncommitted(self, owned: set[int]) -> list[int]:
        """Seek events partitions without a committed offset to their log start.

        During table recovery Faust's fetcher reads stream partitions while the flow is suspended, drops those
        records and moves the position on; afterwards it relies on seek_to_committed() to rewind, which aiokafka
        skips for a partition with no committed offset (or offset 0). A worker killed before its first commit
        would then never see those events again. Runs in the recovery callback, before Faust's own seek.
        """
        from aiokafka import TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        if not owned:
            return []
        tps = [TopicPartition(self.events_topic, p) for p in sorted(owned)]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap,
                                    client_id=f"{self.settings.app_id}-rewind")
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.settings.app_id, partitions=tps)
        finally:
            await admin.close()
        missing = [tp for tp in tps if tp not in committed or committed[tp].offset <= 0]
        if not missing:
            return []
        await self._end_offsets([])  # make sure the offsets client is started
        begins = await self._offsets_client.beginning_offsets(missing)
        await self.app.consumer.seek_wait({TP(tp.topic, tp.partition): begins[tp] for tp in missing})
        return [tp.partition for tp in missing]

    async def _watch_recovery(self, stall: float = 15.0) -> None:
        """Workaround for a Faust hang: table recovery sometimes receives no changelog record at all although
        records remain (faust-streaming #74 family; seen here after a worker joined the group), and resumes only
        at the next rebalance. When recovery makes no progress for `stall` seconds, ask the group to rejoin."""
        recovery = self.app.tables.recovery
        last: int | None = None
        since = time.monotonic()
        while True:
            await asyncio.sleep(2)
            try:
                remaining = recovery.active_remaining_total() if not self.recovered else 0
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
                    await self._request_rejoin()
                except Exception:
                    log.exception("could not request a rejoin")
                since = now

    async def _request_rejoin(self) -> None:
        thread = self.app.consumer._thread  # Faust runs aiokafka in its own thread: call it there

        async def rejoin() -> None:
            thread._ensure_consumer()._coordinator.request_rejoin()

        await thread.call_thread(rejoin)

    def _start_policy_feed(self) -> None:
        if self._watch_task is None:
            self._watch_task = asyncio.ensure_future(self._watch_recovery())
        if self._feed_task is not None:
            return

        def done(task: asyncio.Task) -> None:
            if not task.cancelled() and task.exception() is not None:
                log.error("the policy feed failed; stopping the worker", exc_info=task.exception())
                asyncio.ensure_future(self.app.stop())

        self._feed_task = asyncio.ensure_future(self.policy_feed.run())
        self._feed_task.add_done_callback(done)

    @property
    def ready(self) -> bool:
        return self.recovered and self.policy_feed.ready.is_set()

    def _wire(self) -> None:
        app, processor = self.app, self.processor
        self.api.register(app)

        @app.agent(self.source, concurrency=1, name="slamon-monitor")
        async def monitor(stream: Any) -> None:
            await self.policy_feed.ready.wait()
            ticks = self.ticks_topic
            async for event in stream.events():
                m = event.message
                if m.topic == ticks:
                    processor.on_tick(m.partition, m.value, self._committed(m.partition))
                else:
                    processor.on_event(m.partition, m.offset, int((m.timestamp or 0) * 1000), m.key, m.value)

        @app.timer(self.settings.tick_interval)
        async def send_ticks() -> None:
            if not self.ready:
                return
            tps = [TP(self.events_topic, p) for p in sorted(self._owned())]
            if not tps:
                return
            now = format_instant(wall_clock_us())  # before reading end offsets: they cover all written before now
            ends = await self._end_offsets(tps)
            for tp in tps:
                end = ends.get(tp)
                await self.ticks.send(partition=tp.partition, value=orjson.dumps({"now": now, "end_offset": end}))

        @self.table.on_recover
        async def rebuild() -> None:
            try:
                # gauges are labelled with the policies' segments: load them first (the feed starts with the app)
                await self.policy_feed.ready.wait()
                owned = self._owned()
                started = time.monotonic()
                rewound = await self._rewind_uncommitted(owned)
                if rewound:
                    log.info("events partitions without a committed offset read from their start",
                             extra={"partitions": rewound})
                n = processor.rebuild(owned, self.table.items())
                self.recovered = True
                log.info("deadline index rebuilt", extra={"partitions": sorted(owned), "orders": n,
                                                          "seconds": round(time.monotonic() - started, 3)})
                await self.api.register_partitions(owned)  # logs and carries on when Redis is unreachable
            except Exception:
                log.exception("rebuilding the deadline index failed; stopping the worker")
                await app.stop()

        @app.on_before_shutdown.connect
        async def close_offsets_client(sender: Any, **kwargs: Any) -> None:
            for task in (self._feed_task, self._watch_task):
                if task is not None:
                    task.cancel()
            await self._close_offsets_client()

        @app.on_partitions_assigned.connect
        async def assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
            # Start following sla.policies here, before table recovery: Faust starts @app.task only after
            # recovery, and the recovery callback needs the policies.
            self._start_policy_feed()
            app.producer.buffer.max_messages = PRODUCER_BUFFER_MESSAGES

        @app.on_partitions_revoked.connect
        async def revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
            self.recovered = False
            processor.revoke({tp.partition for tp in revoked if tp.topic == self.events_topic})

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            return web.bytes(generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            return web.json({"status": "ok"})

        @app.page("/readyz")
        async def readyz(web: Any, request: Any) -> Any:
            body = {"ready": self.ready, "recovered": self.recovered, "policies": self.policy_feed.ready.is_set(),
                    "partitions": sorted(self._owned()) if self.recovered else [],
                    "policy_versions": {n: p.version for n, p in self.engine.policies.policies.items()}}
            return web.json(body, status=200 if self.ready else 503)


def _has_lz4() -> bool:
    try:
        import lz4  # noqa: F401
    except ImportError:
        return False
    return True
