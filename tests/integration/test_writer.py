"""The partition writer against the real broker: where each record of a transaction lands."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from monitor.settings import Settings
from monitor.stream.writer import PartitionWriter, Record

pytestmark = pytest.mark.integration


async def _scenario(bootstrap: str, name: str) -> None:
    outputs, changelog = f"out-{name}", f"changelog-{name}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(outputs, 3, 1), NewTopic(changelog, 4, 1)])
    finally:
        await admin.close()
    settings = Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": bootstrap, "SLAMON_APP_ID": f"app-{name}"})
    writer = PartitionWriter(settings, 2)
    await writer.start()
    # outputs keyed by order (placed by the default partitioner), changelog records on partition 2, large values
    # that fill several record batches, a key without a value (a table deletion) and one without a key
    records = []
    for i in range(600):
        key = f"order-{i % 37}".encode()
        records.append(Record(outputs, key, b"w%d:" % i + b"x" * (2000 if i % 5 == 0 else 10)))
        records.append(Record(changelog, key, b"s%d:" % i + b"y" * 1500, 2))
    records += [Record(changelog, b"gone", None, 2), Record(outputs, None, b"no key")]
    try:
        written = await writer.commit(records, {})
        again = await writer.commit([Record(outputs, b"order-1", b"second")], {})
    finally:
        await writer.close()
    assert len(written) == len(records)

    # where a plain producer's send() puts the same keys
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await plain.start()
    try:
        expected = {key: (await plain.send_and_wait(outputs, b"probe", key=key)).partition
                    for key in {r.key for r in records if r.topic == outputs and r.key is not None}}
    finally:
        await plain.stop()

    consumer = AIOKafkaConsumer(outputs, changelog, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    found: dict[tuple[str, int, int], tuple[bytes | None, bytes | None]] = {}
    try:
        total = len(records) + 1 + len(expected)
        deadline = asyncio.get_running_loop().time() + 60
        while len(found) < total and asyncio.get_running_loop().time() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                for m in msgs:
                    found[m.topic, m.partition, m.offset] = (m.key, m.value)
    finally:
        await consumer.stop()
    for record, meta in zip(records, written, strict=True):
        assert meta.topic == record.topic
        assert found[meta.topic, meta.partition, meta.offset] == (record.key, record.value)
        if record.topic == changelog:
            assert meta.partition == 2
        elif record.key is not None:
            assert meta.partition == expected[record.key]
    assert found[again[0].topic, again[0].partition, again[0].offset] == (b"order-1", b"second")
    # order within a partition is the order of the records
    for part in {m.partition for m in written}:
        offsets = [m.offset for m in written if m.topic == outputs and m.partition == part]
        assert offsets == sorted(offsets)


def test_each_record_of_a_transaction_is_where_the_writer_says_in_order(stack, unique_name):
    asyncio.run(_scenario(stack.kafka_bootstrap, unique_name))


async def _broken_sender(bootstrap: str, name: str) -> None:
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaConnectionError, KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"out-{name}", 1, 1), NewTopic(f"in-{name}", 1, 1)])
    finally:
        await admin.close()
    settings = Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": bootstrap, "SLAMON_APP_ID": f"app-{name}"})
    writer = PartitionWriter(settings, 0)
    await writer.start()
    first = writer.producer

    async def connection_lost(*args, **kwargs):
        # what aiokafka's sender does when the broker dies while it looks for the group coordinator: it raises
        # KafkaError from the connection error, and the sender ends (the producer is then in its fatal state)
        raise KafkaError(repr(KafkaConnectionError("Connection closed")))

    first._sender._find_coordinator = connection_lost
    try:
        written = await writer.commit([Record(f"out-{name}", b"k", b"v")], {TopicPartition(f"in-{name}", 0): 5})
    finally:
        await writer.close()
    assert writer.producer is not first  # a new producer committed the batch
    assert written[0].topic == f"out-{name}"
    consumer = AIOKafkaConsumer(f"out-{name}", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        got = []
        deadline = asyncio.get_running_loop().time() + 30
        while not got and asyncio.get_running_loop().time() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                got += [(m.key, m.value) for m in msgs]
    finally:
        await consumer.stop()
    assert got == [(b"k", b"v")]  # once: the broken producer's open transaction was aborted


def test_a_producer_broken_by_a_lost_connection_is_replaced_not_taken_for_fenced(stack, unique_name):
    # the worker used to end ("fenced") when the broker was killed while a transaction looked for the coordinator
    asyncio.run(_broken_sender(stack.kafka_bootstrap, unique_name))
