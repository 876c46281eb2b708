"""The consume loop the board and the notifier share: read a batch, check each record, hand the usable ones to a
handler, retry the handler with exponential back-off while it fails on a transient error, and commit the offsets
only after it succeeded (at-least-once; the handlers are idempotent).

A record that cannot be used (not JSON, not what the contract says: `checks.py`), or that the handler's sink
refused, is skipped: logged once with its topic, partition and offset, counted in
`slamon_skipped_records_total{component, topic, reason}`, and committed with its batch, so it is never read
again and the records after it take effect. Any other error ends the loop (and the process)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge

from ..observe import SkippedRecords
from .checks import REJECTED, Unusable, decode


class Record(NamedTuple):
    """A usable record: where it was read, and its checked value."""

    topic: str
    partition: int
    offset: int
    value: Any


# The usable records of one batch, in partition order.
Batch = list[Record]
# What a handler returns: the records its sink refused, each with the sink's reason (or None: it took them all).
Refused = Iterable[tuple[Record, str]] | None


@dataclass(frozen=True)
class Backoff:
    """Seconds before the first retry, doubled after each failure up to `most`."""

    first: float
    most: float

    def delays(self):
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.most)


@dataclass(frozen=True)
class Periodic:
    """`call()` between batches, first `every` seconds after the loop starts; it returns the seconds until its next
    call (it handles its own errors)."""

    every: float
    call: Callable[[], Awaitable[float]]


class Watch:
    """The loop's metrics and liveness, in the component's registry: records handled and skipped, handler
    retries, and the instant the loop last made progress or finished a wait (a poll, a batch, a back-off).
    `alive()` is false once that is more than `stall_after` seconds ago: the loop hangs."""

    def __init__(self, registry: CollectorRegistry, component: str, log: logging.Logger, *,
                 stall_after: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.component, self.stall_after, self.clock = component, stall_after, clock
        self.skipped = SkippedRecords(registry, component, log)
        self.handled = Counter("slamon_records_handled", "Records the consumer handled (their effect is done)",
                               ["component", "topic"], registry=registry)
        self.retries = Counter("slamon_handler_retries", "Batches retried after a transient error of the sink",
                               ["component"], registry=registry)
        self.beat_at = Gauge("slamon_consume_last_progress_timestamp_seconds",
                             "Unix time the consume loop last made progress or finished a wait", ["component"],
                             registry=registry)
        self.last = clock()
        self.beat()

    def beat(self) -> None:
        self.last = self.clock()
        self.beat_at.labels(self.component).set_to_current_time()

    def alive(self) -> tuple[bool, dict[str, Any]]:
        """(alive, a JSON body for /healthz)."""
        idle = self.clock() - self.last
        ok = idle <= self.stall_after
        return ok, {"status": "ok" if ok else "stuck", "component": self.component,
                    "seconds_since_progress": round(idle, 3), "stall_after_s": self.stall_after}


async def _handle(handler: Callable[[Batch], Awaitable[Refused]], batch: Batch, stop: asyncio.Event,
                  backoff: Backoff, transient: tuple[type[BaseException], ...], log: logging.Logger,
                  retry_message: str, watch: Watch) -> tuple[bool, Refused]:
    """(done, refused): `handler(batch)` retried on transient errors; not done when `stop` was set meanwhile."""
    for delay in backoff.delays():
        try:
            return True, await handler(batch)
        except transient as exc:
            watch.retries.labels(watch.component).inc()
            log.warning(retry_message, extra={"error": str(exc), "retry_in_s": delay})
            if stop.is_set():
                return False, None
            await asyncio.sleep(delay)
            watch.beat()
    raise AssertionError("unreachable: the back-off never ends")


async def consume(consumer: Any, handler: Callable[[Batch], Awaitable[Refused]], stop: asyncio.Event, *,
                  check: Callable[[str, Any], Any], watch: Watch, max_records: int, backoff: Backoff,
                  transient: tuple[type[BaseException], ...], log: logging.Logger, retry_message: str,
                  commit_errors: tuple[type[BaseException], ...] = (), timeout_ms: int = 500,
                  periodic: Periodic | None = None) -> None:
    """Until `stop` is set: `getmany(timeout_ms, max_records)` from the (started) consumer; each value decoded
    and passed to `check(topic, value)` (which returns it, or raises Unusable: the record is skipped);
    `handler(batch)` with the usable records, retried on `transient` errors (each logged as `retry_message`);
    the records it returns as refused skipped; then `commit()` (an error in `commit_errors` is logged: the
    batch will be read again). Returns without committing when `stop` is set while the handler fails."""
    due = time.monotonic() + periodic.every if periodic is not None else math.inf
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        watch.beat()
        batch: Batch = []
        read = 0
        for tp, msgs in batches.items():
            for m in msgs:
                read += 1
                try:
                    batch.append(Record(tp.topic, tp.partition, m.offset, check(tp.topic, decode(m.value))))
                except Unusable as exc:
                    watch.skipped.skip(tp.topic, tp.partition, m.offset, exc.reason, exc.detail)
        if batch:
            done, refused = await _handle(handler, batch, stop, backoff, transient, log, retry_message, watch)
            if not done:
                return
            dropped = set()
            for rec, detail in refused or ():
                dropped.add((rec.topic, rec.partition, rec.offset))
                watch.skipped.skip(rec.topic, rec.partition, rec.offset, REJECTED, detail)
            for rec in batch:
                if (rec.topic, rec.partition, rec.offset) not in dropped:
                    watch.handled.labels(watch.component, rec.topic).inc()
        if read:
            try:
                await consumer.commit()
            except commit_errors as exc:
                log.warning("offsets not committed (the group changed?); the batch will be read again",
                            extra={"error": str(exc)})
        watch.beat()
        if periodic is not None and time.monotonic() >= due:
            due = time.monotonic() + await periodic.call()
