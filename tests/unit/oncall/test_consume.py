"""The consume loop of the board and the notifier, with a stub consumer: retries with growing back-off, commits
only after the handler succeeded, ends on the stop event, calls the periodic callback, skips (logs once, counts,
commits) the records it cannot use or the sink refuses, and reports its liveness."""

from __future__ import annotations

import asyncio
import itertools
import logging
from types import SimpleNamespace
from typing import NamedTuple

import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.oncall.checks import NOT_AN_OBJECT, Unusable
from monitor.oncall.consume import Backoff, Periodic, Watch, consume

log = logging.getLogger("test.consume")


class TopicPartition(NamedTuple):  # the keys of aiokafka's getmany
    topic: str
    partition: int


FAST = Backoff(0.001, 0.004)


class Transient(Exception):
    pass


class CommitFailed(Exception):
    pass


class StubConsumer:
    """Hands out the given batches ({topic: [records]}) one per getmany, then sets `stop`; records calls. A record
    given as bytes is handed out as is, anything else as its JSON; offsets count up per topic. The first
    `failing_commits` commits raise CommitFailed."""

    def __init__(self, batches: list[dict[str, list]], stop: asyncio.Event, failing_commits: int = 0):
        self.batches = list(batches)
        self.stop = stop
        self.calls: list[tuple] = []
        self.offsets: dict[str, int] = {}
        self.failing_commits = failing_commits

    def message(self, topic: str, value):
        offset = self.offsets[topic] = self.offsets.get(topic, -1) + 1
        return SimpleNamespace(offset=offset, value=value if isinstance(value, bytes) else orjson.dumps(value))

    async def getmany(self, timeout_ms: int, max_records: int):
        self.calls.append(("getmany", timeout_ms, max_records))
        if not self.batches:
            self.stop.set()
            return {}
        batch = self.batches.pop(0)
        return {TopicPartition(t, 0): [self.message(t, r) for r in recs] for t, recs in batch.items()}

    async def commit(self):
        self.calls.append(("commit",))
        if self.failing_commits:
            self.failing_commits -= 1
            raise CommitFailed("the group rebalanced")


def objects_only(topic, value):
    if not isinstance(value, dict):
        raise Unusable(NOT_AN_OBJECT, f"a {type(value).__name__}")
    return value


def run(batches, handler, *, backoff=FAST, periodic=None, watch=None, failing_commits=0):
    async def main():
        stop = asyncio.Event()
        consumer = StubConsumer(batches, stop, failing_commits)

        async def handle(batch):
            consumer.calls.append(("handle", [(r.topic, r.value) for r in batch]))
            return await handler(batch, stop)

        await consume(consumer, handle, stop, check=objects_only,
                      watch=watch or Watch(CollectorRegistry(), "test", log), max_records=7, backoff=backoff,
                      transient=(Transient,), commit_errors=(CommitFailed,), log=log,
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
    registry = CollectorRegistry()
    run([{"a": [{}]}], failing(5), watch=Watch(registry, "test", log))
    assert [r.retry_in_s for r in caplog.records] == [0.001, 0.002, 0.004, 0.004, 0.004]
    assert counts(registry) == {("slamon_handler_retries_total", "test"): 5,
                                ("slamon_records_handled_total", "test", "a"): 1}


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


def counts(registry: CollectorRegistry) -> dict[tuple, float]:
    """{(counter, labels...): value} of a registry's counters, zeros left out."""
    return {(s.name, *s.labels.values()): s.value for m in registry.collect() for s in m.samples
            if s.name.endswith("_total") and s.value}


POISON = [b"\xff\xfe", b"{not json", b"null", b"[1]", b"42"]


def test_unusable_records_are_skipped_once_counted_and_committed_and_the_others_handled(caplog):
    caplog.set_level(logging.WARNING, logger=log.name)
    registry = CollectorRegistry()
    handled = []

    async def ok(batch, stop):
        handled.append([(r.topic, r.partition, r.offset, r.value) for r in batch])

    calls = run([{"a": [POISON[0], {"x": 1}, POISON[1], POISON[2]], "b": [POISON[3], POISON[4], {"y": 2}]},
                 {"a": [b"nope"]}], ok, watch=Watch(registry, "test", log))
    # every batch that held a record is committed, the one without a usable record too
    assert [c[0] for c in calls] == ["getmany", "handle", "commit", "getmany", "commit", "getmany"]
    assert handled == [[("a", 0, 1, {"x": 1}), ("b", 0, 2, {"y": 2})]]
    skips = [(r.topic, r.partition, r.offset, r.reason) for r in caplog.records
             if r.getMessage() == "skipping a record it cannot use"]
    assert skips == [("a", 0, 0, "not_utf8"), ("a", 0, 2, "not_json"), ("a", 0, 3, "not_an_object"),
                     ("b", 0, 0, "not_an_object"), ("b", 0, 1, "not_an_object"), ("a", 0, 4, "not_json")]
    skipped = "slamon_skipped_records_total"
    assert counts(registry) == {
        (skipped, "test", "a", "not_utf8"): 1, (skipped, "test", "a", "not_json"): 2,
        (skipped, "test", "a", "not_an_object"): 1, (skipped, "test", "b", "not_an_object"): 2,
        ("slamon_records_handled_total", "test", "a"): 1, ("slamon_records_handled_total", "test", "b"): 1}


def test_records_the_sink_refused_are_skipped_as_rejected_and_the_batch_committed(caplog):
    caplog.set_level(logging.WARNING, logger=log.name)
    registry = CollectorRegistry()

    async def refuse_odd(batch, stop):
        return [(r, "the script failed") for r in batch if r.value["n"] % 2]

    calls = run([{"a": [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]}], refuse_odd, watch=Watch(registry, "test", log))
    assert [c[0] for c in calls] == ["getmany", "handle", "commit", "getmany"]
    assert [(r.offset, r.reason, r.detail) for r in caplog.records] == [(1, "rejected", "the script failed"),
                                                                         (3, "rejected", "the script failed")]
    assert counts(registry) == {("slamon_skipped_records_total", "test", "a", "rejected"): 2,
                                ("slamon_records_handled_total", "test", "a"): 2}


def test_an_error_that_is_not_transient_ends_the_loop_uncommitted():
    async def broken(batch, stop):
        raise KeyError("a bug")

    async def main():
        stop = asyncio.Event()
        consumer = StubConsumer([{"a": [{}]}], stop)
        with pytest.raises(KeyError):
            await consume(consumer, lambda batch: broken(batch, stop), stop, check=objects_only,
                          watch=Watch(CollectorRegistry(), "test", log), max_records=7, backoff=FAST,
                          transient=(Transient,), log=log, retry_message="retrying", timeout_ms=50)
        return consumer.calls

    assert [c[0] for c in asyncio.run(main())] == ["getmany"]


def test_a_failed_commit_is_logged_and_the_loop_goes_on(caplog):
    caplog.set_level(logging.WARNING, logger=log.name)

    async def ok(batch, stop):
        return None

    calls = run([{"a": [{}]}, {"a": [{}]}], ok, failing_commits=1)
    assert [c[0] for c in calls] == ["getmany", "handle", "commit", "getmany", "handle", "commit", "getmany"]
    [warned] = caplog.records
    assert warned.error == "the group rebalanced" and "read again" in warned.getMessage()


def test_the_watch_is_alive_while_the_loop_beats_within_its_bound():
    now = [100.0]
    watch = Watch(CollectorRegistry(), "test", log, stall_after=60, clock=lambda: now[0])
    assert watch.alive() == (True, {"status": "ok", "component": "test", "seconds_since_progress": 0.0,
                                    "stall_after_s": 60})
    now[0] += 60
    assert watch.alive()[0]
    now[0] += 0.5
    ok, body = watch.alive()
    assert not ok and body["status"] == "stuck" and body["seconds_since_progress"] == 60.5
    watch.beat()
    assert watch.alive()[0]


def test_the_loop_beats_on_every_poll_and_every_retry():
    beats = []
    watch = Watch(CollectorRegistry(), "test", log)
    watch.beat = lambda: beats.append(1)  # type: ignore[method-assign]
    run([{}, {"a": [{}]}], failing(2), watch=watch)
    # 3 polls, 2 retries, and after each of the 3 polls' end
    assert len(beats) == 3 + 2 + 3

