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
                               msg(ev, 0, 12), msg(tk, 0, 5)], 1000)
    assert touched == {0, 1}
    assert calls == [("event", 0, 10), ("event", 1, 7), ("event", 0, 11), ("event", 0, 12),
                     ("tick", 0, 3), ("tick", 1, 4), ("tick", 0, 5)]


def test_a_fetchs_metric_changes_are_applied_when_its_messages_are_processed(tmp_path):
    # the processor counts metric changes in plain containers (PendingMoves); the worker applies them after each
    # fetch, so /metrics shows a fetch's events as soon as they are processed
    import orjson

    from monitor.stream.app import WorkerApp

    (tmp_path / "p.yaml").write_text("process: p\nnodes:\n  n: {commitment: 1h, tolerance: 2h}\n")
    worker = WorkerApp(Settings.from_env({"SLAMON_STORE": "memory://", "SLAMON_APP_ID": "metrics-test",
                                          "SLAMON_POLICIES": str(tmp_path)}), 2)
    from monitor.core.policies import load_policy_dir
    worker.engine.set_policies(load_policy_dir(tmp_path)[0])
    worker.processor.rebuild([0], [])
    body = {"event_id": "e1", "order_id": "o1", "process": "p", "type": "node_started", "node": "n",
            "at": "2026-11-21T08:00:00Z"}
    worker._process([SimpleNamespace(topic=worker.events_topic, partition=0, offset=0, timestamp=1.0, key=b"o1",
                                     value=orjson.dumps(body))], 1000)
    registry = worker.metrics.registry
    assert registry.get_sample_value("sla_events_total", {"process": "p", "type": "node_started"}) == 1
    assert registry.get_sample_value("sla_runs_started_total", {"process": "p", "node": "n", "segment": "default"}) == 1
    assert registry.get_sample_value("sla_runs_in_progress", {"process": "p", "node": "n", "segment": "default",
                                                              "level": "normal"}) == 1


def test_the_write_time_is_read_in_the_unit_of_each_path():
    # fast fetch hands over aiokafka's records (timestamp in milliseconds), the agent Faust's messages (seconds)
    from monitor.stream.app import WorkerApp

    worker = WorkerApp(Settings.from_env({"SLAMON_STORE": "memory://", "SLAMON_APP_ID": "unit-test"}), 2)
    seen = []
    worker.processor.on_event = lambda p, offset, write_ms, key, value: seen.append(write_ms)

    def msg(timestamp):
        return SimpleNamespace(topic=worker.events_topic, partition=0, offset=0, timestamp=timestamp, key=b"k",
                               value=b"{}")

    worker._process([msg(1795248000123)], 1)
    worker._process([msg(1795248000.123)], 1000)
    assert seen == [1795248000123, 1795248000123]
