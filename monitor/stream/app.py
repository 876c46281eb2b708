"""The Faust application: one agent over `workflow.events` + `sla.ticks`, the order table, the tick timer.

Everything that decides something lives in `Processor` (and the core); this module only wires it to Faust:

- the agent (concurrency 1) reads both topics; `sla.ticks` has as many partitions as `workflow.events`, so
  Faust's assignor co-partitions them and a tick for partition p is processed in p's context, where p's
  part of the table may be written (its changelog record goes to partition p);
- the timer sends each partition this worker owns a tick with the wall clock and the partition's end offset;
- when table recovery completes (streams still paused), the deadline heaps and gauges are rebuilt; on
  revocation they are dropped;
- the web server: /metrics, /healthz, /readyz and the query API (`web.py`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.types import TP

from .. import kafka
from ..catalogue import DEADLETTER, EVENTS, OUTCOMES, POLICIES, TICKS, WARNINGS, topic_names
from ..clock import now_us
from ..core.engine import Engine
from ..core.instants import US, format_instant
from ..core.policies import PolicySet
from ..logs import logging_config
from ..query import QueryApi
from ..settings import Settings
from . import transport
from .fatal import fatal
from .metrics import MonitorMetrics
from .offsets import Offsets
from .pipeline import CommitPipeline
from .policyfeed import PolicyFeed
from .processor import DEADLETTER as DEADLETTER_OUT
from .processor import OUTCOMES as OUTCOMES_OUT
from .processor import WARNINGS as WARNINGS_OUT
from .processor import Batch, Processor
from .recovery import (
    committed_offset,
    discard_stores_ahead,
    raise_producer_buffer,
    request_rejoin,
    rewind_uncommitted,
    watch_recovery,
)
from .table import store_committed
from .web import add_api_views, add_health_views, local_state_reader
from .writer import Fenced, Record, Writers

log = logging.getLogger("slamon.worker")

PRODUCER_BUFFER_MESSAGES = 10_000  # see recovery.raise_producer_buffer
OUTPUTS = {WARNINGS_OUT: WARNINGS, OUTCOMES_OUT: OUTCOMES, DEADLETTER_OUT: DEADLETTER}
BATCH_MAX = 2000  # messages per batch at most
BATCH_WITHIN = 0.05  # seconds a batch waits for more messages
BATCH_LIMIT = 5000  # fast fetch: records (outputs + table values) a partition's next batch grows to while the
# previous one commits; beyond it the worker waits for that commit (back-pressure)
OFFSETS_EVERY_S = 5.0  # fast fetch: a partition whose batches change nothing commits its offsets this often
COMMIT_INTERVAL_S = 0.1  # fast fetch: a partition's transactions start at least this far apart (light loads)
COMMIT_STALL_S = 60.0  # a commit running this long makes the worker not ready (it may be retrying a broker away)


class WorkerApp:
    """The Faust app of one worker, with its topics, table, agent, timer, callbacks and web views."""

    def __init__(self, settings: Settings, partitions: int):
        self.settings = settings
        names = topic_names(settings.topic_prefix)
        self.events_topic = names[EVENTS]
        self.ticks_topic = names[TICKS]
        rocksdb = settings.store.startswith("rocksdb")
        transport.register(settings)
        self.app = app = faust.App(
            settings.app_id,
            **kafka.faust_broker(settings, scheme=transport.SCHEME),
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
            consumer_group_instance_id=settings.group_instance_id or None,
            broker_heartbeat_interval=max(settings.session_timeout / 10, 0.5),
            producer_linger=0.05,
            producer_max_batch_size=262144,
            producer_compression_type="lz4" if _has_lz4() else None,
            web="slamon-web://",  # web.WEB_URL: the web server without Faust's own views (/, /router, /table, ...)
            web_port=settings.web_port,
            web_bind=settings.web_host,
            web_host=settings.web_host,
            web_tables_enabled=False,
            logging_config=logging_config(settings.log_level),
            key_serializer="raw",
            value_serializer="raw",
            # Faust would otherwise let unprefixed variables (WEB_PORT, BROKER_URL, DATADIR, ...) override the
            # values above; a Kubernetes service link or a PaaS sets such names. SLAMON_* variables only.
            env={},
        )
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.source = app.topic(self.events_topic, self.ticks_topic, **raw)
        self.ticks = app.topic(self.ticks_topic, **raw)
        self.output_topics = {kind: names[topic] for kind, topic in OUTPUTS.items()}
        self.table = app.Table(
            # bytes key and value types make Faust use the raw codec for the changelog too (else JSON)
            "orders", default=None, partitions=partitions, key_type=bytes, value_type=bytes,
            options={"block_cache_size": 64 * 2**20, "write_buffer_size": 16 * 2**20} if rocksdb else None,
        )
        self.metrics = MonitorMetrics()
        self.engine = Engine(PolicySet({}, {}))
        self.processor = Processor(self.engine, _Store(self.table), self.metrics, now_us,
                                   int(settings.closed_retention * US), self.events_topic, self.ticks_topic,
                                   settings.max_state_bytes)
        self.writers = Writers(settings)
        self.pipeline = CommitPipeline(lambda batch: self._commit(batch, always=True), self._next_batch,
                                       self.processor.inflight, interval_s=COMMIT_INTERVAL_S)
        self._last_commit: dict[int, float] = {}
        self.policy_feed = PolicyFeed(settings, names[POLICIES], self._policies_changed)
        self.offsets = Offsets(settings, f"{settings.app_id}-ticks")
        self.changelog_topic = self.table.changelog_topic.get_topic_name()
        self.recovered = False
        self.broker_reachable = True
        self._feed_task: asyncio.Task | None = None
        self._watch_task: asyncio.Task | None = None
        self.api = QueryApi(settings, partitions, self.owned, lambda: self.recovered, now_us,
                            local_state_reader(self.table, self.engine, self.owned, lambda: self.recovered))
        self._wire()
        if transport.fast_fetch:  # fastfetch.py hands the agent's topics' fetched messages to this, not the agent
            self.app.slamon_batches = self._on_fetched
            self.app.slamon_batch_topics = frozenset({self.events_topic, self.ticks_topic})

    # -------------------------------------------------------------- plumbing

    def _policies_changed(self, policies: PolicySet) -> None:
        redefined = self.processor.set_policies(policies)
        self.metrics.prime(policies)
        if redefined and self.recovered:
            # The open runs under these calendars have their next crossings scheduled (in the table and the
            # deadline heaps) by the old definitions. A rebalance commits the batches in flight, and the rebuild
            # after it schedules those runs again and commits their values: one path for this and for a worker
            # that was down when the calendars changed. (While recovering, the rebuild to come does it.)
            log.info("calendars redefined: rejoining the group to schedule the open runs again",
                     extra={"calendars": sorted(redefined)})
            asyncio.ensure_future(self._rejoin())

    async def _rejoin(self) -> None:
        try:
            await request_rejoin(self.app)
        except Exception as exc:  # noqa: BLE001 - a restart reschedules them (rebuild), staying up would not
            fatal("could not rejoin the group to schedule open runs under redefined calendars", exc)

    def owned(self) -> set[int]:
        """The events partitions this worker owns now."""
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.events_topic}

    def _start_background(self) -> None:
        if self._watch_task is None:
            self._watch_task = asyncio.ensure_future(watch_recovery(self.app, lambda: self.recovered))
        if self._feed_task is not None:
            return

        def done(task: asyncio.Task) -> None:
            if not task.cancelled() and task.exception() is not None:
                fatal("the policy feed failed", task.exception())

        self._feed_task = asyncio.ensure_future(self.policy_feed.run())
        self._feed_task.add_done_callback(done)

    @property
    def ready(self) -> bool:
        return (self.recovered and self.policy_feed.ready.is_set() and self.broker_reachable
                and self.pipeline.stalled_for() < COMMIT_STALL_S)

    def status(self) -> dict[str, Any]:
        """What /readyz reports."""
        return {"ready": self.ready, "recovered": self.recovered, "policies": self.policy_feed.ready.is_set(),
                "broker": self.broker_reachable, "commit_running_s": round(self.pipeline.stalled_for(), 1),
                "partitions": sorted(self.owned()) if self.recovered else [],
                "policy_versions": {n: p.version for n, p in self.engine.policies.policies.items()}}

    async def _send_ticks(self) -> None:
        """Send each owned partition a tick with the wall clock and the partition's end offset."""
        if not (self.recovered and self.policy_feed.ready.is_set()):
            return
        tps = [TP(self.events_topic, p) for p in sorted(self.owned())]
        if not tps:
            return
        now = format_instant(now_us())  # before reading end offsets: they cover all written before now
        ends = await self.offsets.end(tps)
        for tp in tps:
            await self.ticks.send(partition=tp.partition, value=orjson.dumps({"now": now, "end_offset": ends.get(tp)}))

    def _broker_state(self, reachable: bool, exc: BaseException | None = None) -> None:
        """Track whether the broker answers the ticks' requests (readiness, a gauge, one log line per change)."""
        if reachable != self.broker_reachable:
            if reachable:
                log.info("the broker answers again")
            else:
                log.warning("the broker does not answer; not ready until it does (warnings due meanwhile come late)",
                            extra={"error": f"{type(exc).__name__}: {exc}"})
        self.broker_reachable = reachable
        self.metrics.broker_up.set(1 if reachable else 0)

    def _process(self, messages: Iterable[Any], ms_per_timestamp: int) -> set[int]:
        """Hand a batch's messages to the processor: its events in order, then its ticks in order; returns the
        partitions they came from. Their `timestamp` (the write time) is in milliseconds on aiokafka's records (fast
        fetch: `ms_per_timestamp` 1), in seconds on Faust's messages (1000).

        Ticks last: Faust's fetch interleaves the topics' records one by one, so a tick came before most of the
        events fetched with it, found the events written before it not yet applied, and could only advance the
        clock to the last applied event's write time; under a steady load the warnings then waited one or two
        ticks more. Processing a tick after later events is what a delayed tick does, which is always safe: the
        state it advances is only more complete (a completion applied first is never announced as a breach).
        A tick that still came too early is held and released after the events of a later fetch catch up with it
        (`Processor.release_held_tick`), not only by the next tick."""
        processor, ticks, touched = self.processor, self.ticks_topic, set()
        held = []
        for m in messages:
            if m.topic == ticks:
                held.append(m)
            else:
                processor.on_event(m.partition, m.offset, int((m.timestamp or 0) * ms_per_timestamp), m.key,
                                   m.value)
            touched.add(m.partition)
        for m in held:
            processor.on_tick(m.partition, m.value, committed_offset(self.app, self.events_topic, m.partition),
                              m.offset)
        for p in touched:
            processor.release_held_tick(p)
        processor.flush_metrics()
        return touched

    async def _on_fetched(self, messages: list[Any]) -> None:
        """Fast fetch: the records of one fetch (aiokafka's), in order, processed at once. A partition with no commit running
        commits its batch now; otherwise the batch grows until that commit is done (pipeline.py), and the worker
        waits only when it has grown past BATCH_LIMIT."""
        await self.policy_feed.ready.wait()
        owned = self.writers.by_partition
        if any(m.partition not in owned for m in messages):  # not assigned (any more): its owner reads them
            messages = [m for m in messages if m.partition in owned]
        touched = contextvars.Context().run(self._process, messages, 1)
        for p in sorted(touched):
            if not self.pipeline.busy(p):
                batch = self._next_batch(p)
                if batch is not None:
                    self.pipeline.submit(batch)
            elif self.processor.pending(p) >= BATCH_LIMIT:
                await self.pipeline.wait_idle(p)  # its end submits the grown batch

    def _next_batch(self, partition: int) -> Batch | None:
        """The partition's batch to commit next, if any. One that changed nothing is committed (its offsets only)
        when the partition committed nothing for OFFSETS_EVERY_S, and dropped otherwise (a later batch commits
        later offsets): Faust does not see these messages, so it commits no offsets for them."""
        batch = self.processor.take(partition)
        if batch is None:
            return None
        now = time.monotonic()
        if batch.outputs or batch.changes or now - self._last_commit.get(partition, 0.0) >= OFFSETS_EVERY_S:
            self._last_commit[partition] = now
            return batch
        return None

    async def _commit(self, batch: Batch, always: bool = False) -> None:
        """Commit one partition's batch (outputs, table values, consumed offsets) in one transaction, then write
        the table values to the local store. In the agent's path (no fast fetch), a batch that changed nothing
        needs no transaction: its offsets are committed with Faust's own commits, which never run ahead of the
        batches (events are acknowledged after their batch)."""
        if not batch.outputs and not batch.changes and not always:
            return
        from aiokafka import TopicPartition

        p = batch.partition
        writer = await self.writers.get(p)
        if writer is None:  # revoked meanwhile: the new owner processes these messages again
            log.warning("dropping a batch of a partition this worker no longer owns", extra={"partition": p})
            return
        changed = list(batch.changes.items())
        records = [Record(self.output_topics[kind], key, value) for kind, key, value in batch.outputs]
        records += [Record(self.changelog_topic, key, value, p) for key, value in changed]
        offsets = {}
        if batch.events_offset is not None:
            offsets[TopicPartition(self.events_topic, p)] = batch.events_offset + 1
        if batch.ticks_offset is not None:
            offsets[TopicPartition(self.ticks_topic, p)] = batch.ticks_offset + 1
        started = time.monotonic()
        written = await writer.commit(records, offsets)
        self.metrics.commit_seconds.observe(time.monotonic() - started)
        first = len(batch.outputs)
        store_committed(self.table.data, TP(self.changelog_topic, p),
                        [(key, value, meta.offset) for (key, value), meta in zip(changed, written[first:], strict=True)])

    def _wire(self) -> None:
        app, processor = self.app, self.processor
        add_health_views(app, self.metrics.registry, self.status)
        add_api_views(app, self.api)

        @app.agent(self.source, concurrency=1, name="slamon-monitor")
        async def consume(stream: Any) -> None:
            await self.policy_feed.ready.wait()
            async for events in stream.take_events(BATCH_MAX, BATCH_WITHIN):
                try:
                    # outside Faust's event context: the table's store then finds every key by key, whatever
                    # partition the batch's last message came from
                    touched = contextvars.Context().run(self._process, (e.message for e in events), 1000)
                    commits = asyncio.ensure_future(asyncio.gather(*(
                        self._commit(b) for p in sorted(touched) if (b := processor.take(p)) is not None)))
                    try:
                        await asyncio.shield(commits)
                    except asyncio.CancelledError:
                        # stopping: Faust acknowledges the batch's events when this loop ends, so the batch
                        # must be committed first (or the process must end before the acknowledgement counts)
                        await commits
                        raise
                except Fenced as exc:
                    fatal("another worker owns a partition of this worker now (fenced); stopping", exc)
                except Exception as exc:  # noqa: BLE001 - the batch path must never ack what it did not commit
                    fatal("processing a batch failed", exc)

        @app.timer(self.settings.tick_interval)
        async def send_ticks() -> None:
            # bounded and never raising: a broker away must not end the timer (it would end the worker)
            try:
                await asyncio.wait_for(self._send_ticks(), timeout=max(5 * self.settings.tick_interval, 10.0))
            except Exception as exc:  # noqa: BLE001
                self._broker_state(False, exc)
            else:
                self._broker_state(True)

        @self.table.on_recover
        async def rebuild() -> None:
            try:
                # gauges are labelled with the policies' segments: load them first (the feed starts with the app)
                await self.policy_feed.ready.wait()
                owned = self.owned()
                started = time.monotonic()
                rewound = await rewind_uncommitted(app, self.settings, self.events_topic, owned, self.offsets)
                if rewound:
                    log.info("events partitions without a committed offset read from their start",
                             extra={"partitions": rewound})
                n = processor.rebuild(owned, self.table.items())
                self.recovered = True
                log.info("deadline index rebuilt", extra={"partitions": sorted(owned), "orders": n,
                                                          "seconds": round(time.monotonic() - started, 3)})
                await self.api.register_partitions(owned)  # logs and carries on when Redis is unreachable
            except Exception as exc:  # noqa: BLE001
                fatal("rebuilding the deadline index failed", exc)

        @app.on_before_shutdown.connect
        async def stop_background(sender: Any, **kwargs: Any) -> None:
            for task in (self._feed_task, self._watch_task):
                if task is not None:
                    task.cancel()
            await self.pipeline.settle()  # the batches in flight commit before their producers close
            await self.offsets.close()
            await self.writers.close()

        @app.on_partitions_assigned.connect
        async def assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
            # Start following sla.policies here, before table recovery: Faust starts @app.task only after
            # recovery, and the recovery callback needs the policies.
            self._start_background()
            raise_producer_buffer(app, PRODUCER_BUFFER_MESSAGES)
            # the partitions' transactional producers: starting them fences whoever wrote for them before
            active = sorted(tp.partition for tp in assigned if tp.topic == self.events_topic
                            and not app.assignor.is_standby(tp))
            log.info("partitions assigned", extra={"partitions": active})
            self.writers.assign(active)

        @app.on_partitions_revoked.connect
        async def revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
            self.recovered = False
            partitions = {tp.partition for tp in revoked if tp.topic == self.events_topic}
            # every partition's batches in flight commit first: the revoked ones before their producers close,
            # the kept ones before the table (and the deadline index rebuilt from it) is read again
            await self.pipeline.settle()
            processor.revoke(partitions)
            await self.writers.revoke(partitions)


def run_worker(settings: Settings, partitions: int) -> None:
    """Run a worker until it is stopped (SIGTERM, Ctrl-C)."""
    monitor = WorkerApp(settings, partitions)
    if settings.store.startswith("rocksdb"):
        asyncio.run(discard_stores_ahead(settings, Path(monitor.app.conf.tabledir), monitor.table.name,
                                         monitor.changelog_topic))
    faust_worker(monitor.app, settings).execute_from_commandline()


def faust_worker(app: faust.App, settings: Settings) -> faust.Worker:
    """Faust's worker service for the app, without its terminal spinner: at log levels from `warning` up it wrote
    cursor escapes and spinner frames into the output (which must hold JSON lines only) and set the root logger to
    DEBUG for itself."""
    worker = faust.Worker(app, loglevel=settings.log_level, logging_config=logging_config(settings.log_level),
                          quiet=True, redirect_stdouts=False)
    worker.spinner = None
    return worker


def _has_lz4() -> bool:
    try:
        import lz4  # noqa: F401
    except ImportError:
        return False
    return True


class _Store:
    """The table's committed values, read by key (`table.data` is created when the worker starts)."""

    def __init__(self, table: Any):
        self.table = table

    def get(self, key: bytes) -> bytes | None:
        return self.table.data.get(key)
