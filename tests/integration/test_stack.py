"""The local stack launcher against the real thing: Kafka from Maven Central jars and Debian's redis-server.

The session's stack (fixture `stack`) is only used, never stopped; start/stop behaviour is tested on a
second stack in a temporary state dir.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.localstack import stack as localstack
from monitor.localstack.procs import alive, port_open, processes_in

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def recorded_ports(state: dict) -> list[int]:
    return [state["kafka"]["port"], state["kafka"]["controller_port"], state["redis"]["port"]]


def recorded_pids(state: dict) -> list[int]:
    return [state["kafka"]["pid"], state["redis"]["pid"]]


def test_up_again_reuses_the_running_stack(stack):
    before = localstack.read_state(stack.state_dir)
    again = localstack.up(stack.state_dir, progress=lambda _m: None)
    assert again.reused
    assert (again.kafka_bootstrap, again.redis_url) == (stack.kafka_bootstrap, stack.redis_url)
    assert (again.kafka_pid, again.redis_pid) == (stack.kafka_pid, stack.redis_pid)
    assert localstack.read_state(stack.state_dir) == before
    env = (stack.state_dir / "env").read_text().splitlines()
    assert env == [f"SLAMON_KAFKA_BOOTSTRAP={stack.kafka_bootstrap}", f"SLAMON_REDIS_URL={stack.redis_url}"]


def test_separate_stack_starts_reuses_and_stops_without_leftovers(tmp_path):
    sdir = tmp_path / "stack"
    first = localstack.up(sdir, progress=lambda _m: None)
    try:
        assert not first.reused
        state = localstack.read_state(sdir)
        assert all(alive(pid) for pid in recorded_pids(state))
        assert all(port_open(port) for port in recorded_ports(state))
        assert localstack.status(sdir)[1] == []

        second = localstack.up(sdir, progress=lambda _m: None)
        assert second.reused and second == first  # same ports and pids
    finally:
        stopped = localstack.down(sdir, progress=lambda _m: None)
    assert stopped
    for pid in recorded_pids(state):
        assert not alive(pid), f"pid {pid} still running after down"
    for port in recorded_ports(state):
        assert not port_open(port), f"port {port} still open after down"
    assert processes_in(sdir / "kafka", ("java",)) == []
    assert not (sdir / "state.json").exists() and not (sdir / "env").exists()
    assert localstack.down(sdir, progress=lambda _m: None) is False  # nothing running: fine


def test_up_replaces_a_stack_whose_broker_died(tmp_path):
    sdir = tmp_path / "stack"
    first = localstack.up(sdir, progress=lambda _m: None)
    try:
        os.kill(first.kafka_pid, 9)
        assert localstack.status(sdir)[1], "a dead broker must make the stack unhealthy"
        second = localstack.up(sdir, progress=lambda _m: None)
        assert not second.reused
        assert second.kafka_pid != first.kafka_pid
        assert not alive(first.redis_pid), "the stale Redis must have been stopped"
    finally:
        localstack.down(sdir, progress=lambda _m: None)
    assert not alive(second.kafka_pid) and not alive(second.redis_pid)


def test_cli_status_and_help(stack):
    run = [sys.executable, "-m", "monitor.localstack"]
    ok = subprocess.run([*run, "status", "--dir", str(stack.state_dir)], cwd=ROOT, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "healthy" in ok.stdout
    for action in ("fetch", "up", "down", "status"):
        helped = subprocess.run([sys.executable, "-m", "monitor.cli", "stack", action, "--help"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert helped.returncode == 0 and "usage:" in helped.stdout, helped.stderr


def test_cli_status_of_an_empty_dir_fails(tmp_path):
    res = subprocess.run([sys.executable, "-m", "monitor.localstack", "status", "--dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "no stack" in res.stdout


def test_keyed_produce_group_consume_commit_and_committed_offsets(stack, unique_name):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic, group = f"stack-test-{unique_name}", f"stack-test-group-{unique_name}"
    keys = [f"order-{i}" for i in range(10)]
    sent = [(keys[i % len(keys)], f"event-{i}") for i in range(60)]

    async def scenario():
        admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
            producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
            await producer.start()
            try:
                for key, value in sent:
                    await producer.send_and_wait(topic, key=key.encode(), value=value.encode())
            finally:
                await producer.stop()

            consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka_bootstrap, group_id=group,
                                        enable_auto_commit=False, auto_offset_reset="earliest")
            await consumer.start()
            received = []
            try:
                async with asyncio.timeout(60):
                    while len(received) < len(sent):
                        batches = await consumer.getmany(timeout_ms=500)
                        for records in batches.values():
                            received.extend(records)
                await consumer.commit()
                ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])
            finally:
                await consumer.stop()
            committed = await admin.list_consumer_group_offsets(group)
            await admin.delete_topics([topic])
            return received, ends, committed
        finally:
            await admin.close()

    received, ends, committed = asyncio.run(scenario())
    assert sorted((r.key.decode(), r.value.decode()) for r in received) == sorted(sent)
    partition_of = {}
    for r in received:  # keyed: each key lands on exactly one partition, in order
        assert partition_of.setdefault(r.key, r.partition) == r.partition
    for key in keys:
        values = [r.value.decode() for r in sorted(received, key=lambda r: r.offset) if r.key == key.encode()]
        assert values == [v for k, v in sent if k == key]
    assert sum(ends.values()) == len(sent)
    for tp, end in ends.items():
        if end:
            assert committed[tp].offset == end, (tp, committed)
        else:  # a partition no key hashed to: nothing or 0 committed
            assert tp not in committed or committed[tp].offset == 0


def test_redis_round_trip(stack, unique_name):
    import redis

    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
    try:
        key = f"stack-test:{unique_name}"
        assert client.set(key, "value-1", ex=60)
        assert client.get(key) == b"value-1"
        assert client.hset(f"{key}:h", mapping={"a": "1", "b": "2"}) == 2
        assert client.hgetall(f"{key}:h") == {b"a": b"1", b"b": b"2"}
        assert client.delete(key, f"{key}:h") == 2
        assert client.get(key) is None
    finally:
        client.close()


def test_redis_aof_option(tmp_path):
    sdir = tmp_path / "stack"
    info = localstack.up(sdir, redis_aof=True, progress=lambda _m: None)
    try:
        import redis

        assert info.redis_aof
        client = redis.Redis.from_url(info.redis_url, socket_timeout=5)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("save") == {"save": ""}
        client.close()
    finally:
        localstack.down(sdir, progress=lambda _m: None)
