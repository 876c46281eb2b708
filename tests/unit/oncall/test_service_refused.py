"""A consumer that cannot start because Kafka refuses this client (credentials, certificate, protocol) ends the
start at once: waiting out --start-timeout cannot help."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.errors import KafkaConnectionError

from monitor.kafka import KafkaRefused
from monitor.oncall.service import Service

from .test_service import FakeConsumer, log


def test_a_refusal_found_after_a_failed_start_ends_the_start_at_once():
    made: list[FakeConsumer] = []
    checks = []

    async def refused() -> None:
        checks.append(time.monotonic())
        if len(checks) == 2:
            raise KafkaRefused("Kafka refused the connection (the SASL credentials ... were refused)")

    async def main():
        return await Service("board", log).start_consumer(
            lambda: FakeConsumer(KafkaConnectionError("Unable to bootstrap"), made), 60, check=refused)

    t0 = time.monotonic()
    with pytest.raises(KafkaRefused, match="SASL credentials"):
        asyncio.run(asyncio.wait_for(main(), 20))
    assert len(made) == 2 and all(c.stopped for c in made) and time.monotonic() - t0 < 5
