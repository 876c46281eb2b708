"""How the worker hands a fetched batch to the processor (without a broker)."""

from __future__ import annotations

from types import SimpleNamespace

from monitor.settings import Settings


def test_a_batchs_ticks_are_processed_after_its_events_each_topic_in_order():
    from monitor.stream.app import WorkerApp

    worker = WorkerApp(Settings.from_env({"SLAMON_STORE": "memory://", "SLAMON_APP_ID": "batch-test"}), 2)
    calls = []
    worker.processor.on_event = lambda p, offset, *rest: calls.append(("event", p, offset))
    worker.processor.on_tick = lambda p, raw, committed, offset: calls.append(("tick", p, offset))

    def msg(topic, p, offset):
        return SimpleNamespace(topic=topic, partition=p, offset=offset, timestamp=1.0, key=b"k", value=b"{}")

    ev, tk = worker.events_topic, worker.ticks_topic
    # Faust's fetch interleaves the topics record by record
    touched = worker._process([msg(ev, 0, 10), msg(tk, 0, 3), msg(ev, 1, 7), msg(ev, 0, 11), msg(tk, 1, 4),
                               msg(ev, 0, 12), msg(tk, 0, 5)])
    assert touched == {0, 1}
    assert calls == [("event", 0, 10), ("event", 1, 7), ("event", 0, 11), ("event", 0, 12),
                     ("tick", 0, 3), ("tick", 1, 4), ("tick", 0, 5)]
