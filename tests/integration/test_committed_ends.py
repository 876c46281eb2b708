"""Where table recovery ends (transport.committed_ends) when a changelog partition has a transaction that has not
ended yet, against the real broker.

The broker answers a commit before it writes the markers that move the last stable offset: a worker paused or slow
at that moment had applied a transaction its recovery then did not see, and Faust ended it (ConsistencyError). The
end is now read once the transaction holding the LSO has ended, with a deadline for one that stays open."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import TP

from monitor.settings import Settings
from monitor.stream import transport

pytestmark = pytest.mark.integration


async def _topic(bootstrap: str) -> str:
    name = f"ends-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1)])
    finally:
        await admin.close()
    return name


async def _topic_and_producer(bootstrap: str) -> tuple[str, AIOKafkaProducer]:
    """A new topic (2 partitions), committed_ends set up for it, and a started transactional producer."""
    topic = await _topic(bootstrap)
    transport.register(Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": bootstrap, "SLAMON_APP_ID": topic}))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"t-{uuid.uuid4().hex[:8]}")
    await producer.start()
    return topic, producer


async def _committed(producer: AIOKafkaProducer, topic: str, n: int) -> None:
    async with producer.transaction():
        for i in range(n):
            await producer.send_and_wait(topic, b"v%d" % i, key=b"k", partition=0)


async def _open(producer: AIOKafkaProducer, topic: str, n: int) -> None:
    await producer.begin_transaction()
    for i in range(n):
        await producer.send_and_wait(topic, b"open%d" % i, key=b"k", partition=0)


async def _ending_while_waited_for(bootstrap: str, commit: bool) -> tuple[bool, dict[TP, int]]:
    topic, producer = await _topic_and_producer(bootstrap)
    try:
        await _committed(producer, topic, 3)  # offsets 0-2, its marker 3
        await _open(producer, topic, 2)  # offsets 4-5: the LSO stays at 4
        ends = asyncio.ensure_future(transport.committed_ends([TP(topic, 0), TP(topic, 1)], settle_s=60))
        await asyncio.sleep(2.0)  # the scenario: the transaction ends while recovery reads where to stop
        waited = not ends.done()
        await (producer.commit_transaction() if commit else producer.abort_transaction())
        return waited, await asyncio.wait_for(ends, 30)
    finally:
        await producer.stop()


def test_a_transaction_committed_while_recovery_looks_is_recovered(stack):
    waited, ends = asyncio.run(_ending_while_waited_for(stack.kafka_bootstrap, commit=True))
    topic = next(iter(ends)).topic
    assert waited, "committed_ends did not wait for the open transaction to end"
    assert ends == {TP(topic, 0): 6, TP(topic, 1): 0}


def test_a_transaction_aborted_while_recovery_looks_is_not_recovered(stack):
    waited, ends = asyncio.run(_ending_while_waited_for(stack.kafka_bootstrap, commit=False))
    topic = next(iter(ends)).topic
    assert waited
    assert ends == {TP(topic, 0): 3, TP(topic, 1): 0}


async def _left_open(bootstrap: str) -> tuple[dict[TP, int], dict[TP, int], float]:
    topic, producer = await _topic_and_producer(bootstrap)
    try:
        await _committed(producer, topic, 3)
        await _open(producer, topic, 2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        at_once = await transport.committed_ends([TP(topic, 0)], settle_s=0)  # as at start-up (recovery.py)
        ends = await transport.committed_ends([TP(topic, 0)], settle_s=1.5)
        return at_once, ends, loop.time() - started
    finally:
        await producer.abort_transaction()
        await producer.stop()


def test_a_transaction_left_open_ends_recovery_at_its_start_after_the_deadline(stack):
    at_once, ends, took = asyncio.run(_left_open(stack.kafka_bootstrap))
    assert list(at_once.values()) == list(ends.values()) == [3]
    assert took >= 1.5


def test_a_partition_without_open_transactions_is_not_waited_for(stack):
    async def scenario() -> tuple[dict[TP, int], float]:
        topic, producer = await _topic_and_producer(stack.kafka_bootstrap)
        try:
            await _committed(producer, topic, 3)
        finally:
            await producer.stop()
        loop = asyncio.get_running_loop()
        started = loop.time()
        ends = await transport.committed_ends([TP(topic, 0), TP(topic, 1)], settle_s=60)
        return ends, loop.time() - started

    ends, took = asyncio.run(scenario())
    assert sorted(ends.values()) == [0, 3]
    assert took < 30, "committed_ends waited for a partition whose transactions had all ended"
