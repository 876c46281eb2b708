"""What the agent does with each message, without Faust: events and ticks in, batches of table values and output
records out.

The agent hands the messages of `workflow.events` and `sla.ticks` to `Processor.on_event` / `on_tick`, partition by
partition. Nothing is written anywhere while a message is processed: each partition's changes collect in a `Batch`
(output records, and the new table values it implies), which the agent commits in one Kafka transaction together
with the consumed offsets, and only then writes to the local store (see `app.py`). Reads see the batch's own
changes first, then the committed store. The processor:

- applies events to order states with the core engine, records the offset applied in the table value (a
  redelivered message is recognised and skipped, not reported as a duplicate), and dead-letters every rejected
  event with its reason and original bytes; an event whose key is not its order_id, or whose state would grow past
  the size limit, is `malformed`; an event the engine fails on is `internal_error`, its order left as it was;
- keeps, per partition, a deadline index and a watermark: a tick advances the partition's orders to the tick's
  time (never beyond this worker's own clock) only when every event written to the partition before the tick was
  sent has been applied (the tick carries the partition's end offset); otherwise to no later than the write time
  of the last event applied. Under lag, warnings wait; they are never announced for a run whose completion is
  already in the log;
- keeps the in-progress gauge by announced level, per partition; metric changes of a message take effect only when
  the message's outcome is kept (a rejected or failed event moves no counter but `sla_invalid_events_total`).

The table value is `table.encode_value` of the partition, the offset applied, the next deadline and the state.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..core.engine import Engine, OrderState, Run, announced_level, load_state, next_deadline
from ..core.events import Malformed, decode_event
from ..core.instants import US, format_instant, parse_instant
from ..core.policies import PolicySet
from ..core.records import outcome_record, warning_record
from ..core.runs import reschedule
from ..core.vocabulary import CANCELLED, INTERNAL_ERROR, LEVELS, MALFORMED, RESOLVED
from .deadlines import DeadlineIndex
from .metrics import LabelKey, MonitorMetrics, PendingMoves
from .table import decode_header, encode_value

log = logging.getLogger("slamon.processor")

# Output kinds (the topics are named by the app): what a batch's records are.
WARNINGS, OUTCOMES, DEADLETTER = "warnings", "outcomes", "deadletter"
# A tick whose order fails to advance is tried again this much later (its warnings wait, none is lost).
RETRY_FAILED_ADVANCE_US = 60 * US
# A dead letter's detail is cut past this many characters.
MAX_DETAIL_CHARS = 2000
# Orders whose decoded state the processor keeps beside the value it encoded (see `Processor._decoded`).
DECODED_STATES = 10_000


@dataclass(slots=True)
class Batch:
    """One partition's changes since its last commit: output records in order, and the new table values (None:
    delete) by key. `events_offset` / `ticks_offset`: the last offset of each input topic the batch consumed."""

    partition: int
    outputs: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    changes: dict[bytes, bytes | None] = field(default_factory=dict)
    events_offset: int | None = None
    ticks_offset: int | None = None


@dataclass(slots=True)
class PartitionClock:
    applied_offset: int | None = None  # offset of the last workflow.events message processed
    applied_write_time: int = 0  # its Kafka timestamp (write time), microseconds
    watermark: int = 0  # the clock this partition's orders have been advanced to
    # the latest tick that came before the events written ahead of it were applied: (its time, its end offset).
    # `release_held_tick` advances to its time once they are, instead of waiting for the next tick.
    held_tick: tuple[int, int] | None = None


class LiveSink:
    """Turns what the engine decides for one partition's orders into output records, metric changes and gauge
    moves. They wait in the sink until the message's outcome is kept (`keep`: records go to the batch, metric
    changes to the processor's pending moves, applied when it flushes them) or dropped (`drop`)."""

    def __init__(self, partition: int, engine: Engine, metrics: MonitorMetrics, clock: Callable[[], int],
                 pending: PendingMoves):
        self.partition = partition
        self.engine = engine
        self.metrics = metrics
        self.clock = clock
        self.pending = pending
        self.out: list[tuple[str, bytes, bytes]] = []  # (output kind, key, record)
        self.incs: list[Any] = []  # counter children, one entry per increment
        self.observed: list[tuple[Any, float]] = []  # (histogram child, value)
        self.gauges: list[tuple[tuple[int, LabelKey], int]] = []  # ((partition, label key), delta)

    def keep(self, batch: Batch) -> None:
        batch.outputs += self.out
        pending = self.pending
        pending.incs += self.incs
        pending.observed += self.observed
        pending.gauge += self.gauges
        self.drop()

    def drop(self) -> None:
        self.out.clear()
        self.incs.clear()
        self.observed.clear()
        self.gauges.clear()

    def _segment(self, state: OrderState, run: Run) -> str:
        return self.engine.policies.segment_label(state.process, run.segment)

    def _gauge(self, state: OrderState, run: Run, seg: str, announced: int, delta: int) -> None:
        self.gauges.append(((self.partition, (state.process, run.node, seg, LEVELS[announced_level(announced)])),
                            delta))

    def run_counted(self, state: OrderState, run: Run) -> None:
        """An open run found in the table after recovery: counted in the gauge at its announced level."""
        key = (state.process, run.node, self._segment(state, run), LEVELS[announced_level(run.announced)])
        self.metrics.in_progress.add(self.partition, key, 1)

    def run_started(self, state: OrderState, run: Run) -> None:
        seg = self._segment(state, run)
        self.incs.append(self.metrics.runs_started.labels(state.process, run.node, seg))
        self._gauge(state, run, seg, run.announced, 1)

    def warning(self, state: OrderState, run: Run, kind: str, run_state: str, at: int, elapsed: int) -> None:
        rec = warning_record(state, run, kind, run_state, at, elapsed)
        now = self.clock()
        rec["detected_at"] = format_instant(now)
        self.out.append((WARNINGS, state.order_id.encode(), orjson.dumps(rec)))
        if kind == RESOLVED:
            return
        seg = self._segment(state, run)
        m = self.metrics
        self.incs.append(m.crossings.labels(state.process, run.node, seg, kind))
        self.observed.append((m.delay.labels(kind), max(now - at, 0) / US))
        # called before the run counts this crossing: the level moves from before to after it
        if announced_level(run.announced) != announced_level(run.announced + 1):
            self._gauge(state, run, seg, run.announced, -1)
            self._gauge(state, run, seg, run.announced + 1, 1)

    def outcome(self, state: OrderState, run: Run, run_state: str, ended_at: int, elapsed: int) -> None:
        rec = outcome_record(state, run, run_state, ended_at, elapsed)
        rec["detected_at"] = format_instant(self.clock())
        self.out.append((OUTCOMES, state.order_id.encode(), orjson.dumps(rec)))
        seg = self._segment(state, run)
        m = self.metrics
        self.incs.append(m.outcomes.labels(state.process, run.node, seg, run_state))
        if run_state != CANCELLED:
            self.observed.append((m.duration.labels(state.process, run.node), elapsed / US))
            self.observed.append((m.ratio.labels(state.process, run.node), elapsed / run.commitment))
        self._gauge(state, run, seg, run.announced, -1)


class Processor:
    def __init__(self, engine: Engine, store: Mapping[bytes, bytes], metrics: MonitorMetrics,
                 clock: Callable[[], int], closed_retention_us: int = 86400 * US, events_topic: str = "workflow.events",
                 ticks_topic: str = "sla.ticks", max_state_bytes: int = 512 * 1024):
        self.engine = engine
        self.store = store  # the committed table values
        self.metrics = metrics
        self.clock = clock  # wall clock, microseconds (detected_at / received_at, and the bound on ticks)
        self.closed_retention = closed_retention_us
        self.events_topic = events_topic
        self.ticks_topic = ticks_topic
        self.max_state_bytes = max_state_bytes
        self.deadlines = DeadlineIndex()
        self.clocks: dict[int, PartitionClock] = {}
        self._sinks: dict[int, LiveSink] = {}
        self.metric_moves = PendingMoves(metrics.in_progress)  # kept messages' metric changes, until flush_metrics
        self._batches: dict[int, Batch] = {}
        # order key -> (the table value the processor last made for it, its partition, its offset applied, the state
        # it encodes): the next message of the order whose value *is* that object (not just equal to it) skips
        # decoding it. An entry is taken out while its state is in use (the engine changes states in place) and put
        # back only with the value of a change kept, so a failed or dropped change never leaves a state that
        # does not match its value. Bounded: emptied when it grows past DECODED_STATES.
        self._decoded: dict[bytes, tuple[bytes, int, int, OrderState]] = {}
        # partition -> its taken batches whose transaction has not committed yet, oldest first (pipeline.py: one)
        self.inflight: dict[int, list[Batch]] = {}

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
        n = rescheduled = 0
        for key, value in items:
            if not value:
                continue
            p, offset, deadline, body = decode_header(value)
            if p not in owned:
                continue
            n += 1
            if offset > applied.get(p, -1):
                applied[p] = offset
            state = load_state(body, self.engine)
            if reschedule(state):  # a calendar redefined since the value was written: its crossings move
                value, deadline = self._value(p, offset, state)
                self._batch(p).changes[key] = value  # committed with the partition's next batch
                rescheduled += 1
            if deadline is not None:
                entries[p].append((deadline, key))
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
        if rescheduled:
            log.info("open runs scheduled again under redefined calendars", extra={"orders": rescheduled})
        return n

    def revoke(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.deadlines.drop(p)
            self.clocks.pop(p, None)
            self._sinks.pop(p, None)
            self._batches.pop(p, None)
            self.inflight.pop(p, None)
            self.metrics.in_progress.drop(p)
        self._decoded.clear()

    def set_policies(self, policies: PolicySet) -> frozenset[str]:
        """New policies for runs started from now on. Returns the calendars they redefine (see Engine.set_policies):
        the open runs that use them are scheduled again by the next `rebuild`. The decoded states kept are dropped:
        a state read from its value takes its runs' calendars by name from the engine, and a kept state must not
        answer differently from its value."""
        redefined = self.engine.set_policies(policies)
        self._decoded.clear()
        return redefined

    def flush_metrics(self) -> None:
        """Apply the metric changes of the messages kept since the last call (the worker calls it after each
        fetch's messages, before anything else can run)."""
        self.metric_moves.flush()

    # ---------------------------------------------------------------- batches

    def take(self, partition: int) -> Batch | None:
        """The partition's changes since the last `take` (None when there are none), to be committed."""
        return self._batches.pop(partition, None)

    def pending(self, partition: int) -> int:
        """Records (outputs and table values) the partition's batch holds so far."""
        batch = self._batches.get(partition)
        return 0 if batch is None else len(batch.outputs) + len(batch.changes)

    def _batch(self, partition: int) -> Batch:
        batch = self._batches.get(partition)
        if batch is None:
            batch = self._batches[partition] = Batch(partition)
        return batch

    def _read(self, batch: Batch, key: bytes) -> bytes | None:
        """An order's value as the batches before this one left it: this batch's change, else that of the newest
        batch in flight that changed it, else the committed value."""
        if key in batch.changes:
            return batch.changes[key]
        for earlier in reversed(self.inflight.get(batch.partition, ())):
            if key in earlier.changes:
                return earlier.changes[key]
        return self.store.get(key)

    # ---------------------------------------------------------------- messages

    def _clock(self, partition: int) -> PartitionClock:
        c = self.clocks.get(partition)
        if c is None:
            c = self.clocks[partition] = PartitionClock()
        return c

    def _sink(self, partition: int) -> LiveSink:
        sink = self._sinks.get(partition)
        if sink is None:
            sink = self._sinks[partition] = LiveSink(partition, self.engine, self.metrics, self.clock,
                                                         self.metric_moves)
        return sink

    def _value(self, partition: int, offset: int, state: OrderState) -> tuple[bytes, int | None]:
        """The table value recording `state`, and the instant the order needs the clock next (None: never)."""
        deadline = next_deadline(state)
        if state.finished:
            purge = (state.last_at or 0) + self.closed_retention
            deadline = purge if deadline is None else min(deadline, purge)
        return encode_value(partition, offset, deadline, state), deadline

    def _keep(self, batch: Batch, sink: LiveSink, key: bytes, value: bytes, deadline: int | None) -> None:
        """Keep a change: its outputs and its table value go to the batch, committed together."""
        sink.keep(batch)
        batch.changes[key] = value
        if deadline is not None:
            self.deadlines.push(batch.partition, deadline, key)

    def dead_letter(self, batch: Batch, reason: str, detail: str, offset: int, key: bytes | None,
                    raw: bytes | None) -> None:
        self.metrics.invalid.labels(reason).inc()
        raw = raw or b""
        if len(detail) > MAX_DETAIL_CHARS:  # (a detail quotes parts of the event, which can be long)
            detail = detail[:MAX_DETAIL_CHARS] + "... (cut)"
        text, encoding = _raw_text(raw)
        rec = {"reason": reason, "detail": detail, "topic": self.events_topic, "partition": batch.partition,
               "offset": offset, "received_at": format_instant(self.clock()), "raw": text, "raw_encoding": encoding}
        data = orjson.dumps(rec)
        # A dead letter larger than the broker takes would fail its transaction again and again, and the partition
        # would stop: an event close to the size limit makes one (base64 and JSON escapes grow it). Its raw is cut
        # to a prefix (whole characters of UTF-8 text) that keeps the record within SLAMON_MAX_STATE_BYTES, which
        # is kept below the broker's limit, and says so.
        keep = len(raw)
        while len(data) > self.max_state_bytes and keep > 0:
            keep = min(keep - 1, int(keep * self.max_state_bytes / len(data) * 0.95))
            prefix = raw[:keep]
            rec["raw"] = prefix.decode("utf-8", "ignore") if encoding == "utf-8" else base64.b64encode(prefix).decode()
            rec["raw_truncated"], rec["raw_bytes"] = True, len(raw)
            data = orjson.dumps(rec)
        batch.outputs.append((DEADLETTER, key, data))

    def on_event(self, partition: int, offset: int, write_time_ms: int, key: bytes | None, raw: bytes | None) -> None:
        batch = self._batch(partition)
        batch.events_offset = offset
        clock = self._clock(partition)
        try:
            self._apply_event(batch, offset, key, raw)
        finally:
            clock.applied_offset = offset
            clock.applied_write_time = max(clock.applied_write_time, write_time_ms * 1000)

    def _apply_event(self, batch: Batch, offset: int, key: bytes | None, raw: bytes | None) -> None:
        try:
            ev = decode_event(raw if raw is not None else b"")
        except Malformed as exc:
            self.dead_letter(batch, MALFORMED, str(exc), offset, key, raw)
            return
        tkey = ev.order_id.encode()
        if key != tkey:
            self.dead_letter(batch, MALFORMED, f"the message key {_shown(key)} is not the event's order_id "
                             f"{ev.order_id!r} (events of one order must share a key, so they share a partition)",
                             offset, key, raw)
            return
        value = self._read(batch, tkey)
        sink = self._sink(batch.partition)
        try:
            state = None
            if value:
                decoded = self._decoded.pop(tkey, None)
                if decoded is not None and decoded[0] is value:
                    _, p0, last_offset, state = decoded
                else:
                    p0, last_offset, _, body = decode_header(value)
                    decoded = None
                if p0 == batch.partition and offset <= last_offset:
                    if decoded is not None:
                        self._decoded[tkey] = decoded
                    return  # redelivered after a crash or rebalance: its effect is already in the table
                if state is None:
                    state = load_state(body, self.engine)  # (a value it cannot read is an internal error too)
            new, rejection = self.engine.apply(state, ev, sink)
            if rejection is None:
                new_value, deadline = self._value(batch.partition, offset, new)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the monitor's own fault: this event only, the order as it was
            sink.drop()
            log.exception("applying an event failed", extra={"partition": batch.partition, "offset": offset})
            self.dead_letter(batch, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", offset, key, raw)
            return
        if rejection is not None:
            sink.drop()
            self.dead_letter(batch, rejection.reason, rejection.detail, offset, key, raw)
            return
        if len(new_value) > self.max_state_bytes:
            sink.drop()
            self.dead_letter(batch, MALFORMED, f"the order's state would grow to {len(new_value)} bytes, over the "
                             f"limit of {self.max_state_bytes} (SLAMON_MAX_STATE_BYTES)", offset, key, raw)
            return
        sink.incs.append(self.metrics.events.labels(ev.process, ev.type))
        self._keep(batch, sink, tkey, new_value, deadline)
        self._remember(tkey, new_value, batch.partition, offset, new)  # type: ignore[arg-type]

    def _remember(self, key: bytes, value: bytes, partition: int, offset: int, state: OrderState) -> None:
        decoded = self._decoded
        if len(decoded) >= DECODED_STATES:
            decoded.clear()
        decoded[key] = (value, partition, offset, state)

    def on_tick(self, partition: int, raw: bytes, committed: int | None = None, offset: int | None = None) -> int:
        """Advance the partition's due orders. `committed` is the group's committed offset of the events
        partition, used when no event has been processed since assignment. Returns the watermark used."""
        batch = self._batch(partition)
        if offset is not None:
            batch.ticks_offset = offset
        clock = self._clock(partition)
        try:
            tick = orjson.loads(raw)
            now = parse_instant(tick["now"])
            end = tick.get("end_offset")
            if end is not None and (type(end) is not int or end < 0):
                raise ValueError(f"end_offset {end!r}")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.metrics.skipped.skip(self.ticks_topic, partition, -1 if offset is None else offset,
                                      "unreadable_tick", str(exc))
            return clock.watermark
        own = self.clock()
        if now > own:  # a tick from a clock ahead of ours (or forged): not trusted beyond our own
            now = own
        if end is None:
            caught_up = False
        else:
            caught_up = (end == 0 or (clock.applied_offset is not None and clock.applied_offset + 1 >= end)
                         or (committed is not None and committed >= end))
        self.metrics.ticks.labels("true" if caught_up else "false").inc()
        self.metrics.tick_delay.observe(max(own - now, 0) / US)
        if caught_up:
            if clock.held_tick is not None and now >= clock.held_tick[0]:
                clock.held_tick = None
        elif end is not None and (clock.held_tick is None or now >= clock.held_tick[0]):
            clock.held_tick = (now, end)
        return self._advance(batch, clock, partition, now if caught_up else min(now, clock.applied_write_time))

    def release_held_tick(self, partition: int) -> int | None:
        """After a batch's events: when the partition has a tick held back (it came before the events written ahead
        of it were applied) and they now are, advance to the tick's time, as the tick itself would have if it had
        come after them. Returns the watermark then, None when no tick was released."""
        clock = self.clocks.get(partition)
        if clock is None or clock.held_tick is None:
            return None
        now, end = clock.held_tick
        if clock.applied_offset is None or clock.applied_offset + 1 < end:
            return None
        clock.held_tick = None
        return self._advance(self._batch(partition), clock, partition, now)

    def _advance(self, batch: Batch, clock: PartitionClock, partition: int, mark: int) -> int:
        """Move the partition's watermark up to `mark` (never back) and advance the orders due by then."""
        if mark > clock.watermark:
            clock.watermark = mark
        wm = clock.watermark
        sink = self._sink(partition)
        for deadline, key in list(self.deadlines.pop_due(partition, wm)):
            value = self._read(batch, key)
            if not value:
                continue
            try:
                p0, offset_applied, stored, body = decode_header(value)
            except Exception:  # noqa: BLE001 - a value it cannot read: logged, left alone, the others go on
                log.exception("an order's table value cannot be read", extra={"partition": partition})
                continue
            if p0 != partition or stored is None or stored > deadline:
                continue  # stale entry: the order moved on and has its own entry
            decoded = self._decoded.pop(key, None)
            try:
                state = decoded[3] if decoded is not None and decoded[0] is value else load_state(body, self.engine)
                if state.finished and (state.last_at or 0) + self.closed_retention < wm:
                    batch.changes[key] = None
                    continue
                self.engine.advance(state, wm, sink)
                new_value, next_due = self._value(partition, offset_applied, state)
                if new_value == value:  # nothing crossed (e.g. a retry entry of an order already advanced)
                    sink.drop()
                    self._remember(key, value, partition, offset_applied, state)
                    if next_due is not None:
                        self.deadlines.push(partition, next_due, key)
                    continue
            except Exception:  # noqa: BLE001 - the monitor's own fault: this order waits and is tried again
                sink.drop()
                log.exception("advancing an order failed; trying again later",
                              extra={"partition": partition, "order": key.decode("utf-8", "replace")})
                self.deadlines.push(partition, deadline + RETRY_FAILED_ADVANCE_US, key)
                continue
            self._keep(batch, sink, key, new_value, next_due)
            self._remember(key, new_value, partition, offset_applied, state)
        return wm


def _raw_text(raw: bytes) -> tuple[str, str]:
    """`raw` and `raw_encoding` of a dead letter: the bytes as text, or base64 when they are not UTF-8."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), "base64"


def _shown(key: bytes | None) -> str:
    if key is None:
        return "(none)"
    return repr(key.decode("utf-8", "replace")[:100])
