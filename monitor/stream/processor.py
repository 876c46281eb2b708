"""What the agent does with each message, without Faust: events and ticks in, table writes and outputs out.

The agent hands every message of `workflow.events` and `sla.ticks` to `Processor.on_event` / `on_tick`, in the
context of its partition, with the order table as a mapping (bytes keys and values). The processor:

- applies events to order states with the core engine, records the offset applied in the same table write
  (a redelivered message after a crash or rebalance is recognised and skipped, not reported as a duplicate),
  and sends every rejected event to the dead-letter topic with its reason and original bytes;
- keeps, per partition, a deadline index and a watermark: a tick advances the partition's orders to the tick's
  time only when every event written to the partition before the tick was sent has been applied (the tick
  carries the partition's end offset); otherwise to no later than the write time of the last event applied.
  Under lag, warnings wait; they are never announced for a run whose completion is already in the log;
- keeps the in-progress gauge by announced level, per partition.

The table value is `table.encode_value` of the partition, the offset applied, the next deadline and the state.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..core.engine import Engine, OrderState, Run, announced_level, load_state, next_deadline
from ..core.events import Malformed, decode_event
from ..core.instants import US, format_instant, parse_instant
from ..core.records import outcome_record, warning_record
from ..core.vocabulary import CANCELLED, LEVELS, MALFORMED, RESOLVED
from .deadlines import DeadlineIndex
from .metrics import MonitorMetrics
from .table import decode_header, encode_value

log = logging.getLogger("slamon.processor")

Emit = Callable[[str, bytes | None, bytes], None]  # (output: warnings|outcomes|deadletter, key, value)


@dataclass(slots=True)
class PartitionClock:
    applied_offset: int | None = None  # offset of the last workflow.events message processed
    applied_write_time: int = 0  # its Kafka timestamp (write time), microseconds
    watermark: int = 0  # the clock this partition's orders have been advanced to


class LiveSink:
    """Turns what the engine decides for one partition's orders into output records, metrics and gauge moves.
    The records wait in `out` until the processor hands them to the producer."""

    def __init__(self, partition: int, engine: Engine, metrics: MonitorMetrics, clock: Callable[[], int]):
        self.partition = partition
        self.engine = engine
        self.metrics = metrics
        self.clock = clock
        self.out: list[tuple[str, bytes, dict[str, Any]]] = []

    def _segment(self, state: OrderState, run: Run) -> str:
        return self.engine.policies.segment_label(state.process, run.segment)

    def _gauge(self, state: OrderState, run: Run, seg: str, announced: int, delta: int) -> None:
        level = LEVELS[announced_level(announced)]
        self.metrics.in_progress.add(self.partition, (state.process, run.node, seg, level), delta)

    def run_counted(self, state: OrderState, run: Run) -> None:
        """An open run found in the table after recovery: counted in the gauge at its announced level."""
        self._gauge(state, run, self._segment(state, run), run.announced, 1)

    def run_started(self, state: OrderState, run: Run) -> None:
        seg = self._segment(state, run)
        self.metrics.runs_started.labels(state.process, run.node, seg).inc()
        self._gauge(state, run, seg, run.announced, 1)

    def warning(self, state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> None:
        rec = warning_record(state, run, kind, run_state, at, elapsed)
        now = self.clock()
        rec["detected_at"] = format_instant(now)
        self.out.append(("warnings", state.order_id.encode(), rec))
        if kind == RESOLVED:
            return
        seg = self._segment(state, run)
        m = self.metrics
        m.crossings.labels(state.process, run.node, seg, kind).inc()
        m.delay.labels(kind).observe(max(now - at, 0) / US)
        # called before the run counts this crossing: the level moves from before to after it
        if announced_level(run.announced) != announced_level(run.announced + 1):
            self._gauge(state, run, seg, run.announced, -1)
            self._gauge(state, run, seg, run.announced + 1, 1)

    def outcome(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        rec = outcome_record(state, run, run_state, ended_at, elapsed)
        rec["detected_at"] = format_instant(self.clock())
        self.out.append(("outcomes", state.order_id.encode(), rec))
        seg = self._segment(state, run)
        m = self.metrics
        m.outcomes.labels(state.process, run.node, seg, run_state).inc()
        if run_state != CANCELLED:
            m.duration.labels(state.process, run.node).observe(elapsed / US)
            m.ratio.labels(state.process, run.node).observe(elapsed / run.commitment)
        self._gauge(state, run, seg, run.announced, -1)


class Processor:
    def __init__(self, engine: Engine, table: MutableMapping[bytes, bytes], emit: Emit, metrics: MonitorMetrics,
                 clock: Callable[[], int], closed_retention_us: int = 86400 * US, events_topic: str = "workflow.events"):
        self.engine = engine
        self.table = table
        self.emit = emit
        self.metrics = metrics
        self.clock = clock  # wall clock, microseconds (only for detected_at / received_at and ticks)
        self.closed_retention = closed_retention_us
        self.events_topic = events_topic
        self.deadlines = DeadlineIndex()
        self.clocks: dict[int, PartitionClock] = {}
        self._sinks: dict[int, LiveSink] = {}

    # ---------------------------------------------------------------- assignment

    def rebuild(self, partitions: Iterable[int], items: Iterable[tuple[bytes, bytes]]) -> int:
        """After recovery: deadline heaps and gauges of the owned partitions, from the table. Returns orders seen."""
        owned = set(partitions)
        for p in self.deadlines.partitions() - owned:
            self.revoke([p])
        entries: dict[int, list[tuple[int, bytes]]] = {p: [] for p in owned}
        applied: dict[int, int] = {}  # highest events offset whose effect is in the table, per partition
        for p in owned:
            self.metrics.in_progress.reset(p)
        n = 0
        for key, value in items:
            if not value:
                continue
            p, offset, deadline, body = decode_header(value)
            if p not in owned:
                continue
            n += 1
            if offset > applied.get(p, -1):
                applied[p] = offset
            if deadline is not None:
                entries[p].append((deadline, key))
            state = load_state(body, self.engine)
            sink = self._sink(p)
            for run in state.runs.values():
                sink.run_counted(state, run)
        for p in owned:
            self.deadlines.reset(p, entries[p])
            clock = self.clocks.setdefault(p, PartitionClock())
            # Events are applied in offset order, so every event of p up to the highest offset stored in the table
            # has been processed: the watermark need not wait for Faust's offset commits to say so.
            if p in applied and (clock.applied_offset is None or clock.applied_offset < applied[p]):
                clock.applied_offset = applied[p]
        self.metrics.in_progress.assign(owned)
        return n

    def revoke(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.deadlines.drop(p)
            self.clocks.pop(p, None)
            self._sinks.pop(p, None)
            self.metrics.in_progress.drop(p)

    # ---------------------------------------------------------------- messages

    def _clock(self, partition: int) -> PartitionClock:
        c = self.clocks.get(partition)
        if c is None:
            c = self.clocks[partition] = PartitionClock()
        return c

    def _sink(self, partition: int) -> LiveSink:
        sink = self._sinks.get(partition)
        if sink is None:
            sink = self._sinks[partition] = LiveSink(partition, self.engine, self.metrics, self.clock)
        return sink

    def _flush(self, sink: LiveSink) -> None:
        out = sink.out
        for topic, key, rec in out:
            self.emit(topic, key, orjson.dumps(rec))
        out.clear()

    def _store(self, key: bytes, partition: int, offset: int, state: OrderState) -> None:
        """Write the order's state (which records the crossings announced) to the table.

        Call it after the outputs of the change were handed to the producer: the table's changelog record and the
        outputs go through the same producer queue in order, so a crash can lose the table write and keep the
        outputs (they are sent again on reprocessing: a duplicate, dropped by `warning_id`), but never keep the
        record that says "announced" without the announcement itself.
        """
        deadline = next_deadline(state)
        if state.finished:
            purge = (state.last_at or 0) + self.closed_retention
            deadline = purge if deadline is None else min(deadline, purge)
        self.table[key] = encode_value(partition, offset, deadline, state)
        if deadline is not None:
            self.deadlines.push(partition, deadline, key)

    def dead_letter(self, reason: str, detail: str, topic: str, partition: int, offset: int, key: bytes | None,
                    raw: bytes | None) -> None:
        self.metrics.invalid.labels(reason).inc()
        raw = raw or b""
        try:
            text, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(raw).decode(), "base64"
        rec = {"reason": reason, "detail": detail, "topic": topic, "partition": partition, "offset": offset,
               "received_at": format_instant(self.clock()), "raw": text, "raw_encoding": encoding}
        self.emit("deadletter", key, orjson.dumps(rec))

    def on_event(self, partition: int, offset: int, write_time_ms: int, key: bytes | None, raw: bytes | None) -> None:
        clock = self._clock(partition)
        try:
            try:
                ev = decode_event(raw if raw is not None else b"")
            except Malformed as exc:
                self.dead_letter(MALFORMED, str(exc), self.events_topic, partition, offset, key, raw)
                return
            tkey = ev.order_id.encode()
            value = self.table.get(tkey)
            state = None
            if value:
                p0, last_offset, _, body = decode_header(value)
                if p0 == partition and offset <= last_offset:
                    return  # redelivered after a crash or rebalance: its effect is already in the table
                state = load_state(body, self.engine)
            sink = self._sink(partition)
            new, rejection = self.engine.apply(state, ev, sink)
            if rejection is not None:
                self.dead_letter(rejection.reason, rejection.detail, self.events_topic, partition, offset, key, raw)
                return
            self.metrics.events.labels(ev.process, ev.type).inc()
            self._flush(sink)  # outputs before the table write: see _store
            self._store(tkey, partition, offset, new)  # type: ignore[arg-type]
        finally:
            clock.applied_offset = offset
            clock.applied_write_time = max(clock.applied_write_time, write_time_ms * 1000)

    def on_tick(self, partition: int, raw: bytes, committed: int | None = None) -> int:
        """Advance the partition's due orders. `committed` is the group's committed offset of the events
        partition, used when no event has been processed since assignment. Returns the watermark used."""
        try:
            tick = orjson.loads(raw)
            now = parse_instant(tick["now"])
            end = tick.get("end_offset")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignoring unreadable tick", extra={"partition": partition})
            return self._clock(partition).watermark
        clock = self._clock(partition)
        if end is None:
            caught_up = False
        else:
            caught_up = (end == 0 or (clock.applied_offset is not None and clock.applied_offset + 1 >= end)
                         or (committed is not None and committed >= end))
        self.metrics.ticks.labels("true" if caught_up else "false").inc()
        self.metrics.tick_delay.observe(max(self.clock() - now, 0) / US)
        mark = now if caught_up else min(now, clock.applied_write_time)
        if mark > clock.watermark:
            clock.watermark = mark
        wm = clock.watermark
        sink = self._sink(partition)
        for deadline, key in list(self.deadlines.pop_due(partition, wm)):
            value = self.table.get(key)
            if not value:
                continue
            p0, offset, stored, body = decode_header(value)
            if p0 != partition or stored != deadline:
                continue  # stale entry: the order moved on and has its own entry
            state = load_state(body, self.engine)
            if state.finished and (state.last_at or 0) + self.closed_retention < wm:
                del self.table[key]
                continue
            self.engine.advance(state, wm, sink)
            self._flush(sink)
            self._store(key, partition, offset, state)
        return wm
