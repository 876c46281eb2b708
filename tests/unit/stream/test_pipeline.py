"""The commit pipeline without Kafka: a commit function whose transactions the test finishes one by one."""

import asyncio
from dataclasses import dataclass, field

import pytest

from monitor.stream.pipeline import CommitPipeline
from monitor.stream.writer import Fenced


@dataclass(eq=False)
class FakeBatch:
    partition: int
    name: str
    changes: dict = field(default_factory=dict)


class Broker:
    """Commits that wait until the test lets them finish; records the order they started and finished in."""

    def __init__(self):
        self.started: list[str] = []
        self.finished: list[str] = []
        self.gates: dict[str, asyncio.Future] = {}
        self.fatal: list[tuple[str, BaseException]] = []

    async def commit(self, batch):
        self.started.append(batch.name)
        gate = self.gates.setdefault(batch.name, asyncio.get_running_loop().create_future())
        await gate
        self.finished.append(batch.name)

    def finish(self, name, exc=None):
        gate = self.gates.setdefault(name, asyncio.get_running_loop().create_future())
        if exc is None:
            gate.set_result(None)
        else:
            gate.set_exception(exc)


async def until(condition, seconds=2.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def run(coro):
    return asyncio.run(coro)


def test_a_partitions_batches_commit_one_after_the_other_in_order_and_stay_readable_until_then():
    async def main():
        broker, inflight = Broker(), {}
        pipe = CommitPipeline(broker.commit, inflight, depth=3, on_fatal=lambda m, e: broker.fatal.append((m, e)))
        a, b, other = FakeBatch(0, "a"), FakeBatch(0, "b"), FakeBatch(1, "x")
        await pipe.submit(a)
        await pipe.submit(b)
        await pipe.submit(other)
        await until(lambda: broker.started == ["a", "x"])  # b waits for a; partition 1 does not
        assert inflight == {0: [a, b], 1: [other]}
        broker.finish("a")
        await until(lambda: broker.started == ["a", "x", "b"])
        assert inflight[0] == [b]
        broker.finish("b")
        broker.finish("x")
        await pipe.settle()
        assert broker.finished[:1] == ["a"] and sorted(broker.finished) == ["a", "b", "x"]
        assert inflight == {0: [], 1: []} and pipe.pending(0) == 0 and broker.fatal == []

    run(main())


def test_submit_waits_while_more_than_depth_batches_of_the_partition_are_in_flight():
    async def main():
        broker, inflight = Broker(), {}
        pipe = CommitPipeline(broker.commit, inflight, depth=2, on_fatal=lambda m, e: None)
        await pipe.submit(FakeBatch(0, "a"))
        await pipe.submit(FakeBatch(0, "b"))
        third = asyncio.ensure_future(pipe.submit(FakeBatch(0, "c")))
        await until(lambda: broker.started == ["a"])
        await asyncio.sleep(0.01)
        assert not third.done()  # three in flight, depth 2: back-pressure until the oldest committed
        broker.finish("a")
        await asyncio.wait_for(third, 2)
        assert pipe.pending(0) == 2
        broker.finish("b")
        broker.finish("c")
        await pipe.settle([0])
        assert broker.finished == ["a", "b", "c"]

    run(main())


def test_settle_waits_for_every_batch_in_flight():
    async def main():
        broker = Broker()
        pipe = CommitPipeline(broker.commit, {}, depth=5, on_fatal=lambda m, e: None)
        for name in "abc":
            await pipe.submit(FakeBatch(0, name))
        settled = asyncio.ensure_future(pipe.settle())
        await asyncio.sleep(0.01)
        assert not settled.done()
        for name in "abc":
            broker.finish(name)
        await asyncio.wait_for(settled, 2)
        assert broker.finished == ["a", "b", "c"]

    run(main())


@pytest.mark.parametrize("exc, says", [(Fenced("new owner"), "fenced"), (RuntimeError("boom"), "committing")])
def test_a_failed_commit_is_fatal(exc, says):
    async def main():
        broker, calls = Broker(), []
        pipe = CommitPipeline(broker.commit, {}, depth=2, on_fatal=lambda m, e: calls.append((m, e)))
        await pipe.submit(FakeBatch(0, "a"))
        broker.finish("a", exc)
        await pipe.settle()
        assert len(calls) == 1 and says in calls[0][0] and calls[0][1] is exc

    run(main())


def test_a_commit_past_the_deadline_is_fatal_and_a_long_one_shows_as_stalled():
    async def main():
        broker, calls, now = Broker(), [], [100.0]
        pipe = CommitPipeline(broker.commit, {}, depth=2, deadline_s=0.05,
                              on_fatal=lambda m, e: calls.append(m), clock=lambda: now[0])
        assert pipe.stalled_for() == 0
        await pipe.submit(FakeBatch(0, "a"))  # never finished by the test: a wedged transaction
        await until(lambda: broker.started == ["a"])
        now[0] = 161.0
        assert pipe.stalled_for() == 61.0
        await pipe.settle()
        assert len(calls) == 1 and "did not commit within" in calls[0]
        assert pipe.stalled_for() == 0

    run(main())
