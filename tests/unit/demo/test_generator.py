"""The demo's generator: its orders, status changes included, are valid under the demo policies."""

import asyncio
import random
from collections import Counter
from pathlib import Path

import orjson

from monitor.core.engine import Engine
from monitor.core.events import decode_event
from monitor.core.policies import load_policy_dir
from monitor.core.replay import ReplaySink
from monitor.demo import generator as gen

DEMO = Path(__file__).resolve().parents[3] / "deploy" / "demo" / "policies"


class FakeProducer:
    def __init__(self):
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, topic, key, value):
        self.sent.append((key, value))


def generated(monkeypatch, orders: int, seed: int) -> list[bytes]:
    clock = [1_795_248_000_000_000]  # 2026-11-21, microseconds: advanced by the generator's sleeps, no real waiting

    async def sleep(seconds):
        clock[0] += int(seconds * 1_000_000)

    monkeypatch.setattr(gen, "now_us", lambda: clock[0])
    monkeypatch.setattr(gen.asyncio, "sleep", sleep)
    g, producer = gen.Generator(None, "workflow.events", random.Random(seed)), FakeProducer()

    async def main():
        for _ in range(orders):
            await g.order(producer)

    asyncio.run(main())
    return [value for _, value in producer.sent]


def test_generated_orders_are_valid_under_the_demo_policies_and_some_are_status_changes(monkeypatch):
    raw = generated(monkeypatch, 200, seed=4)
    engine, sink, states, rejected = Engine(load_policy_dir(DEMO)[0]), ReplaySink(), {}, []
    for value in raw:
        e = decode_event(value)
        state, rejection = engine.apply(states.get(e.order_id), e, sink)
        states[e.order_id] = state
        if rejection:
            rejected.append(rejection)
    assert rejected == []
    types = Counter(orjson.loads(v)["type"] for v in raw)
    statuses = Counter(orjson.loads(v).get("status") for v in raw if b"status_changed" in v)
    assert types["status_changed"] > 100 and types["node_started"] > 100
    assert set(statuses) == {"New", "In Progress", "Awaiting Customer", "Pending Confirmation", "Resolved",
                             "Withdrawn"}
    segments = {(s.process, r.segment) for s in states.values() for r in s.runs.values()}
    segments |= {(w["process"], w["segment"]) for _, _, w in sink.warnings}
    assert {("support_ticket", "p1_outage"), ("support_ticket", "enterprise"),
            ("broadband_install", "enterprise")} <= segments
    assert any(w["warning_id"].endswith("approaching@50") for _, _, w in sink.warnings)
