"""The consume loop the board and the notifier share: read a batch, hand it to a handler, retry the handler with
exponential back-off while it fails on a transient error, and commit the offsets only after it succeeded, so a
record is never skipped (at-least-once; the handlers are idempotent)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

# (topic, decoded record) pairs of one batch, in partition order
Batch = list[tuple[str, Any]]


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


async def consume(consumer: Any, handler: Callable[[Batch], Awaitable[None]], stop: asyncio.Event, *,
                  max_records: int, backoff: Backoff, transient: tuple[type[BaseException], ...],
                  log: logging.Logger, retry_message: str, timeout_ms: int = 500,
                  periodic: Periodic | None = None) -> None:
    """Until `stop` is set: `getmany(timeout_ms, max_records)` from the (started) consumer, `handler(batch)` with
    the JSON values decoded, retried on `transient` errors (each logged as `retry_message`), then `commit()`.
    Returns without committing when `stop` is set while the handler fails."""
    due = time.monotonic() + periodic.every if periodic is not None else math.inf
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        batch = [(tp.topic, orjson.loads(m.value)) for tp, msgs in batches.items() for m in msgs]
        if batch:
            for delay in backoff.delays():
                try:
                    await handler(batch)
                    break
                except transient as exc:
                    log.warning(retry_message, extra={"error": str(exc), "retry_in_s": delay})
                    if stop.is_set():
                        return
                    await asyncio.sleep(delay)
            await consumer.commit()
        if periodic is not None and time.monotonic() >= due:
            due = time.monotonic() + await periodic.call()
