"""The one patch of Faust's internals for throughput: the consumer's drain loop, handing fetched batches over whole.

Faust's `Consumer._drain_messages` hands every fetched message to the streams one by one: `wait_first(callback(
message), suspend_flow.wait())` creates tasks and futures for each (about 140 us per message on the development
machine), then the conductor decodes it into an event, queues it for the agent's stream, whose iterator takes it
off the queue, calls the sensors and adds it to the `take_events` buffer. Together that was the largest cost of
the worker. The loop here differs from Faust's in two ways:

- the records of the app's *batch topics* (`app.slamon_batch_topics`: the agent's `workflow.events` and
  `sla.ticks`) are taken from one fetch a partition at a time, as aiokafka's consumer records (not made Faust
  messages one by one, nor checked one by one as Faust's `getmany` does: its per-record highwater lookup and
  message object were a tenth of a draining worker's time) and handed to `app.slamon_batches(records)` at once;
  the conductor, the stream and Faust's acknowledgements are not involved (the worker commits their offsets in its
  own transactions). A fetch cut short by a rebalance (the flow suspended or the consumer generation changed
  meanwhile) is not handed over: Faust seeks the partitions to their committed offsets when they are assigned, so
  those records are read again by their owner;
- other records go through the rest of Faust's `getmany` (`_messages`) to Faust's callback, awaited directly while
  the flow runs (`wait_first` only while a rebalance is suspending the flow, where the callback may wait on a
  paused queue).

Everything else is Faust's loop and `getmany` as they are in the pinned version; `FAUST_SHAPE` records a digest of
their source, and a unit test fails when a Faust upgrade changes either, so the copy is reviewed again.
`SLAMON_FAST_FETCH=0` turns the patch off: Faust's own loop runs and the agent takes the messages from its stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import AsyncIterator
from typing import Any

from faust.transport import consumer as faust_consumer

# sha256 of inspect.getsource of Faust's `Consumer._drain_messages` and `Consumer.getmany`, which this copy follows
# (faust-streaming 0.15.3)
FAUST_SHAPE = {
    "_drain_messages": "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    "getmany": "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e",
}


def faust_shape() -> dict[str, str]:
    return {name: hashlib.sha256(inspect.getsource(getattr(faust_consumer.Consumer, name)).encode()).hexdigest()
            for name in FAUST_SHAPE}


async def drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - exercised by the integration tests
    """Faust's `Consumer._drain_messages` (with its `getmany`), with the batch topics' records handed over per fetch
    and the callback awaited directly while the flow is not suspended."""
    callback = self.callback
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
            await self.sleep(0)
            if not self.should_stop:
                # read before the fetch: a rebalance that begins while it waits discards the batch topics' records
                fetched_in = self.app.consumer_generation_id
                # Faust's getmany, first step: one fetch of the active partitions
                records, active_partitions = await self._wait_next_records(1.0)
                if records is None or self.should_stop:
                    unset_flag(flag_consumer_fetching)
                    continue
                if not self.flow_active:  # (getmany's else branch)
                    self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
                    try:
                        await self.perform_seek()
                    except Exception as ex:  # noqa: BLE001 - as Faust's getmany
                        self.log.warning(f"exception performing seek when flow not active {ex}")
                    unset_flag(flag_consumer_fetching)
                    continue
                generation_id = self.app.consumer_generation_id  # (what getmany checks the other records against)
                fetched: list[Any] = []  # the batch topics' records, whole partitions at a time, in offset order
                others = {}
                for tp, tp_records in records.items():
                    if tp.topic not in batch_topics:
                        others[tp] = tp_records
                    elif tp_records and (active_partitions is None or tp in active_partitions
                                         or tp in self._buffered_partitions):
                        self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                        r_offset = get_read_offset(tp)
                        if r_offset is not None and tp_records[0].offset < r_offset:
                            tp_records = [r for r in tp_records if r.offset >= r_offset]
                        if tp_records:
                            fetched += tp_records
                            set_read_offset(tp, tp_records[-1].offset)
                async for tp, message in _messages(self, others, active_partitions, generation_id):
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
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


async def _messages(self: Any, records: Any, active_partitions: Any, generation_id: int) -> AsyncIterator[Any]:
    """The rest of Faust's `Consumer.getmany` for the records of the other topics: round-robin over their partitions,
    stopping when the flow stops or the generation changes, each record made a Faust message."""
    if not records:
        return
    to_message = self._to_message
    for tp, record in self.scheduler.iterate(records):
        if not self.flow_active:
            break
        if self.app.consumer_generation_id != generation_id:
            self.log.dev("Generation id changed from %r to %r. Cancelling getmany.", generation_id,
                         self.app.consumer_generation_id)
            break
        if active_partitions is None or tp in active_partitions or tp in self._buffered_partitions:
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            yield tp, to_message(tp, record)
