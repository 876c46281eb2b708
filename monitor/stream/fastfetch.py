"""The one patch of Faust's internals for throughput: the consumer's drain loop, handing fetched batches over whole.

Faust's `Consumer._drain_messages` hands every fetched message to the streams one by one: `wait_first(callback(
message), suspend_flow.wait())` creates tasks and futures for each (about 140 us per message on the development
machine), then the conductor decodes it into an event, queues it for the agent's stream, whose iterator takes it
off the queue, calls the sensors and adds it to the `take_events` buffer. Together that was the largest cost of
the worker. The loop here differs from Faust's in two ways:

- the messages of the app's *batch topics* (`app.slamon_batch_topics`: the agent's `workflow.events` and
  `sla.ticks`) are collected as they come out of one fetch and handed to `app.slamon_batches(messages)` at once,
  in fetch order; the conductor, the stream and Faust's acknowledgements are not involved (the worker commits
  their offsets in its own transactions). A fetch cut short by a rebalance (the flow suspended or the consumer
  generation changed meanwhile) is not handed over: Faust seeks the partitions to their committed offsets when
  they are assigned, so those messages are read again by their owner;
- other messages go to Faust's callback, awaited directly while the flow runs (`wait_first` only while a rebalance
  is suspending the flow, where the callback may wait on a paused queue).

Everything else is Faust's loop as it is in the pinned version; `FAUST_SHAPE` records a digest of that source, and
a unit test fails when a Faust upgrade changes it, so the copy is reviewed again. `SLAMON_FAST_FETCH=0` turns the
patch off: Faust's own loop runs and the agent takes the messages from its stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import AsyncIterator
from typing import Any, cast

from faust.transport import consumer as faust_consumer

# sha256 of inspect.getsource(faust.transport.consumer.Consumer._drain_messages) this copy follows (0.15.3)
FAUST_SHAPE = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"


def faust_shape() -> str:
    return hashlib.sha256(inspect.getsource(faust_consumer.Consumer._drain_messages).encode()).hexdigest()


async def drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - exercised by the integration tests
    """Faust's `Consumer._drain_messages`, with the batch topics' messages handed over per fetch and the callback
    awaited directly while the flow is not suspended."""
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    suspended = self.suspend_flow.is_set

    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = faust_consumer.CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for

    batches = getattr(self.app, "slamon_batches", None)
    batch_topics = getattr(self.app, "slamon_batch_topics", frozenset()) if batches is not None else frozenset()

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = cast(AsyncIterator, getmany(timeout=1.0))
            await self.sleep(0)
            if not self.should_stop:
                fetched: list[Any] = []
                fetched_in = self.app.consumer_generation_id
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if message.topic in batch_topics:
                        if r_offset is None or offset >= r_offset:
                            fetched.append(message)
                            set_read_offset(tp, offset)
                        continue
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset:
                            if acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None:
                            if self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                        if suspended():
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        else:
                            await callback(message)
                        set_read_offset(tp, offset)
                # handed over only if no rebalance began meanwhile (else read again by their owner)
                if fetched and self.flow_active and self.app.consumer_generation_id == fetched_in \
                        and not self.should_stop:
                    await batches(fetched)
                unset_flag(flag_consumer_fetching)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)
