"""The consume loop of the board and the notifier, with a stub consumer: retries with growing back-off, commits
only after the handler succeeded, ends on the stop event, and calls the periodic callback."""

from __future__ import annotations

import asyncio
import itertools
import logging
from types import SimpleNamespace
from typing import NamedTuple

import orjson
import pytest

from monitor.oncall.consume import Backoff, Periodic, consume

log = logging.getLogger("test.consume")


class TopicPartition(NamedTuple):  # the keys of aiokafka's getmany
    topic: str
    partition: int


FAST = Backoff(0.001, 0.004)


class Transient(Exception):
    pass


class StubConsumer:
    """Hands out the given batches ({topic: [records]}) one per getmany, then sets `stop`; records calls."""

    def __init__(self, batches: list[dict[str, list[dict]]], stop: asyncio.Event):
        self.batches = list(batches)
        self.stop = stop
        self.calls: list[tuple] = []

    async def getmany(self, timeout_ms: int, max_records: int):
        self.calls.append(("getmany", timeout_ms, max_records))
        if not self.batches:
            self.stop.set()
            return {}
        batch = self.batches.pop(0)
        return {TopicPartition(t, 0): [SimpleNamespace(value=orjson.dumps(r)) for r in recs]
                for t, recs in batch.items()}

    async def commit(self):
        self.calls.append(("commit",))


def run(batches, handler, *, backoff=FAST, periodic=None):
    async def main():
        stop = asyncio.Event()
        consumer = StubConsumer(batches, stop)

        async def handle(batch):
            consumer.calls.append(("handle", batch))
            await handler(batch, stop)

        await consume(consumer, handle, stop, max_records=7, backoff=backoff, transient=(Transient,), log=log,
                      retry_message="not accepted; retrying", timeout_ms=50, periodic=periodic)
        return consumer.calls

    return asyncio.run(asyncio.wait_for(main(), 10))


def failing(times: int, *, stop_on_failure: bool = False):
    left = itertools.count(times, -1)

    async def handler(batch, stop):
        if next(left) > 0:
            if stop_on_failure:
                stop.set()
            raise Transient("down")

    return handler


def test_the_handler_is_retried_and_the_batch_committed_only_after_it_succeeded(caplog):
    caplog.set_level(logging.WARNING, logger=log.name)
    calls = run([{"a": [{"x": 1}], "b": [{"y": 2}]}], failing(2))
    kinds = [c[0] for c in calls]
    assert kinds == ["getmany", "handle", "handle", "handle", "commit", "getmany"]
    assert calls[0] == ("getmany", 50, 7)
    assert calls[1] == ("handle", [("a", {"x": 1}), ("b", {"y": 2})])
    retries = [r for r in caplog.records if r.getMessage() == "not accepted; retrying"]
    assert [(r.retry_in_s, r.error) for r in retries] == [(0.001, "down"), (0.002, "down")]


def test_the_back_off_doubles_up_to_its_most(caplog):
    caplog.set_level(logging.WARNING, logger=log.name)
    run([{"a": [{}]}], failing(5))
    assert [r.retry_in_s for r in caplog.records] == [0.001, 0.002, 0.004, 0.004, 0.004]


def test_the_back_off_of_the_board_and_the_notifier():
    assert list(itertools.islice(Backoff(0.2, 10.0).delays(), 8)) == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    assert list(itertools.islice(Backoff(0.5, 15.0).delays(), 7)) == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


def test_stop_during_retries_ends_the_loop_without_a_commit():
    calls = run([{"a": [{}]}, {"a": [{}]}], failing(10, stop_on_failure=True))
    assert [c[0] for c in calls] == ["getmany", "handle"]


def test_empty_batches_are_neither_handled_nor_committed():
    async def never(batch, stop):
        pytest.fail("handled an empty batch")

    calls = run([{}, {"a": []}], never)
    assert [c[0] for c in calls] == ["getmany", "getmany", "getmany"]


def test_the_periodic_callback_runs_between_batches_at_the_delay_it_returns():
    seen: list[str] = []

    async def tick() -> float:
        seen.append("tick")
        return 0 if seen.count("tick") < 2 else 3600  # the third call would be an hour later

    async def ok(batch, stop):
        seen.append("batch")

    run([{"a": [{}]}, {"a": [{}]}, {"a": [{}]}], ok, periodic=Periodic(0, tick))
    assert seen == ["batch", "tick", "batch", "tick", "batch"]
