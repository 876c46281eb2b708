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


class Grower:
    """The processor's side: the next batch of each partition, growing while its previous one commits."""

    def __init__(self):
        self.next: dict[int, FakeBatch] = {}

    def add(self, partition, name):
        self.next[partition] = FakeBatch(partition, name)

    def take(self, partition):
        return self.next.pop(partition, None)


def pipeline(broker, grower, **kw):
    kw.setdefault("on_fatal", lambda m, e: broker.fatal.append((m, e)))
    return CommitPipeline(broker.commit, grower.take, kw.pop("inflight", {}), **kw)


def test_the_next_batch_commits_when_the_running_one_has_committed_and_is_readable_until_then():
    async def main():
        broker, grower, inflight = Broker(), Grower(), {}
        pipe = pipeline(broker, grower, inflight=inflight)
        a, other = FakeBatch(0, "a"), FakeBatch(1, "x")
        pipe.submit(a)
        pipe.submit(other)
        assert pipe.busy(0) and pipe.busy(1) and not pipe.busy(2)
        with pytest.raises(AssertionError):
            pipe.submit(FakeBatch(0, "too early"))  # one transaction per partition at a time
        grower.add(0, "b")  # processed meanwhile: grows instead of committing
        await until(lambda: broker.started == ["a", "x"])
        assert inflight == {0: [a], 1: [other]}
        broker.finish("a")
        await until(lambda: broker.started == ["a", "x", "b"])  # taken and started as soon as a committed
        assert [b.name for b in inflight[0]] == ["b"] and grower.next == {}
        broker.finish("b")
        broker.finish("x")
        await pipe.settle()
        assert broker.finished[:1] == ["a"] and sorted(broker.finished) == ["a", "b", "x"]
        assert inflight == {} and not pipe.busy(0) and broker.fatal == []

    run(main())


def test_wait_idle_waits_for_the_running_commit_and_settle_commits_what_grew_meanwhile():
    async def main():
        broker, grower = Broker(), Grower()
        pipe = pipeline(broker, grower)
        pipe.submit(FakeBatch(0, "a"))
        waiting = asyncio.ensure_future(pipe.wait_idle(0))
        grower.add(0, "b")
        settled = asyncio.ensure_future(pipe.settle())
        await asyncio.sleep(0.01)
        assert not waiting.done() and not settled.done()
        broker.finish("a")
        await asyncio.wait_for(waiting, 2)
        await until(lambda: broker.started == ["a", "b"])
        assert not settled.done()  # b grew while a committed: settled only once b committed too
        broker.finish("b")
        await asyncio.wait_for(settled, 2)
        assert broker.finished == ["a", "b"]

    run(main())


@pytest.mark.parametrize("exc, says", [(Fenced("new owner"), "fenced"), (RuntimeError("boom"), "committing")])
def test_a_failed_commit_is_fatal(exc, says):
    async def main():
        broker, calls = Broker(), []
        pipe = pipeline(broker, Grower(), on_fatal=lambda m, e: calls.append((m, e)))
        pipe.submit(FakeBatch(0, "a"))
        broker.finish("a", exc)
        await pipe.settle()
        assert len(calls) == 1 and says in calls[0][0] and calls[0][1] is exc

    run(main())


def test_a_commit_past_the_deadline_is_fatal_and_a_long_one_shows_as_stalled():
    async def main():
        broker, calls, now = Broker(), [], [100.0]
        pipe = pipeline(broker, Grower(), deadline_s=0.05, on_fatal=lambda m, e: calls.append(m),
                        clock=lambda: now[0])
        assert pipe.stalled_for() == 0
        pipe.submit(FakeBatch(0, "a"))  # never finished by the test: a wedged transaction
        await until(lambda: broker.started == ["a"])
        now[0] = 161.0
        assert pipe.stalled_for() == 61.0
        await pipe.settle()
        assert len(calls) == 1 and "did not commit within" in calls[0]
        assert pipe.stalled_for() == 0

    run(main())


def test_under_a_light_load_a_partitions_transactions_start_an_interval_apart():
    async def main():
        broker, grower = Broker(), Grower()
        pipe = pipeline(broker, grower, interval_s=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        pipe.submit(FakeBatch(0, "a"))
        broker.finish("a")  # commits at once
        await until(lambda: broker.finished == ["a"])
        grower.add(0, "b")
        assert pipe.busy(0)  # still: the next batch grows for the rest of the interval
        await until(lambda: broker.started == ["a", "b"])
        assert loop.time() - started >= 0.19
        broker.finish("b")
        await pipe.settle()
        assert broker.finished == ["a", "b"]

    run(main())
