"""The one patch of Faust's internals for throughput: the consumer's drain loop without a task per message.

Faust's `Consumer._drain_messages` hands every fetched message to the streams with
`wait_first(callback(message), suspend_flow.wait())`, which creates tasks and futures for each message (about
140 us per message on the development machine: the largest single cost of the worker). The loop here awaits the
callback directly while the flow runs, and uses `wait_first` only while a rebalance is suspending the flow, where
it matters (the callback may wait on a paused queue). Everything else is Faust's loop as it is in the pinned
version; `FAUST_SHAPE` records a digest of that source, and a unit test fails when a Faust upgrade changes it,
so the copy is reviewed again. `SLAMON_FAST_FETCH=0` turns the patch off (Faust's own loop runs).
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
    """Faust's `Consumer._drain_messages`, awaiting the callback directly while the flow is not suspended."""
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

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = cast(AsyncIterator, getmany(timeout=1.0))
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
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
