"""The demo's order generator: orders of two processes; about a quarter of node runs are slow, some are paused or
cancelled, and a little bad input. Most support tickets arrive as a ticket system sends them, as status changes
(`status_changed`, mapped by the policy's `statuses:`), with a priority and a category that choose their segment."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson

from .. import kafka
from ..clock import now_us
from ..core.instants import format_instant
from ..settings import Settings

FLOWS = {
    "broadband_install": (["site_survey", "installation", "activation"], {"site_survey": 6, "installation": 10,
                                                                         "activation": 4}),
    "support_ticket": (["triage", "resolve", "confirm"], {"triage": 3, "resolve": 12, "confirm": 5}),
}
# the statuses of deploy/demo/policies/support_ticket.yaml that start each node's run, and its pause and ends
STATUS_OF = {"triage": "New", "resolve": "In Progress", "confirm": "Pending Confirmation"}
WAITING, RESOLVED, WITHDRAWN = "Awaiting Customer", "Resolved", "Withdrawn"
STATUS_SHARE = 0.7  # of support tickets, sent as status changes


class Generator:
    """Orders of two processes; about a quarter of node runs are slow, some are paused or cancelled."""

    def __init__(self, settings: Settings, topic: str, rng: random.Random):
        self.settings, self.topic, self.rng = settings, topic, rng
        self.n = 0
        self.sent = 0
        self.run_id = f"{int(time.time()) % 100000:05d}"  # demo topics persist across runs: keep ids unique

    async def send(self, producer: Any, order: str, process: str, etype: str, node: str | None = None,
                   **extra: Any) -> None:
        self.sent += 1
        e = {"event_id": f"{order}-{self.sent}", "order_id": order, "process": process, "type": etype,
             "at": format_instant(now_us()), **extra}
        if node:
            e["node"] = node
        await producer.send(self.topic, key=order.encode(), value=orjson.dumps(e))

    async def order(self, producer: Any) -> None:
        rng = self.rng
        self.n += 1
        process = rng.choice(list(FLOWS))
        nodes, typical = FLOWS[process]
        order = f"{process.split('_')[0][:4]}-{self.run_id}-{self.n:04d}"
        segment = "enterprise" if rng.random() < 0.2 else "default"
        attrs: dict[str, Any] = {"region": rng.choice(["north", "south", "east", "west"])}
        if process == "support_ticket":
            attrs.update(priority=rng.choice(["P1", "P2", "P3", "P3"]),
                         category=rng.choice(["outage", "security", "billing", "question"]))
            if rng.random() < STATUS_SHARE:
                await self.ticket(producer, order, process, nodes, typical, segment, attrs)
                return
        for node in nodes:
            await self.send(producer, order, process, "node_started", node, segment=segment, attrs=attrs)
            slow = rng.random() < 0.25
            duration = typical[node] * (rng.uniform(1.1, 2.2) if slow else rng.uniform(0.2, 0.9))
            if rng.random() < 0.1:  # waiting for the customer: the clock stops
                await asyncio.sleep(duration / 2)
                await self.send(producer, order, process, "node_paused", node)
                await asyncio.sleep(rng.uniform(3, 8))
                await self.send(producer, order, process, "node_resumed", node)
                await asyncio.sleep(duration / 2)
            else:
                await asyncio.sleep(duration)
            if rng.random() < 0.04:
                await self.send(producer, order, process, "order_cancelled")
                return
            await self.send(producer, order, process, "node_completed", node)
        await self.send(producer, order, process, "order_completed")

    async def ticket(self, producer: Any, order: str, process: str, nodes: list[str], typical: dict[str, float],
                     segment: str, attrs: dict[str, Any]) -> None:
        """A ticket as a ticket system reports it: one status change per step; a new status completes the run of
        the previous one; waiting for the customer pauses the resolution; `Resolved` closes every clock."""
        rng = self.rng

        async def status(name: str) -> None:
            await self.send(producer, order, process, "status_changed", status=name, segment=segment, attrs=attrs)

        for node in nodes:
            await status(STATUS_OF[node])
            slow = rng.random() < 0.25
            duration = typical[node] * (rng.uniform(1.1, 2.2) if slow else rng.uniform(0.2, 0.9))
            if node == "resolve" and rng.random() < 0.2:
                await asyncio.sleep(duration / 2)
                await status(WAITING)
                await asyncio.sleep(rng.uniform(3, 8))
                await status(STATUS_OF[node])  # back in progress: the paused run resumes
                await asyncio.sleep(duration / 2)
            else:
                await asyncio.sleep(duration)
            if rng.random() < 0.04:
                await status(WITHDRAWN)
                return
        await status(RESOLVED)

    async def bad_input(self, producer: Any) -> None:
        kind = self.rng.choice(["not json", "unknown node", "no offset"])
        if kind == "not json":
            await producer.send(self.topic, key=b"junk", value=b"<event>oops</event>")
        elif kind == "unknown node":
            await self.send(producer, "junk-1", "support_ticket", "node_started", "escalate")
        else:
            await producer.send(self.topic, key=b"junk", value=orjson.dumps({
                "event_id": f"junk-{self.sent}", "order_id": "junk", "process": "support_ticket",
                "type": "node_started", "node": "triage", "at": "2026-11-21 08:00:00"}))

    async def run(self, rate: float) -> None:
        producer = kafka.producer(self.settings, client_id="slamon-demo", linger_ms=5)
        await producer.start()
        tasks: set[asyncio.Task] = set()
        try:
            while True:
                t = asyncio.create_task(self.order(producer))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                if self.rng.random() < 0.03:
                    await self.bad_input(producer)
                await asyncio.sleep(self.rng.expovariate(rate))
        finally:
            for t in tasks:
                t.cancel()
            await producer.stop()
