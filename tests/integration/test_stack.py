"""The local stack launcher against the real thing: Kafka from Maven Central jars and Debian's redis-server.

The session's stack (fixture `stack`) is only used, never stopped; start/stop behaviour is tested on a
second stack in a temporary state dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.localstack import StackError
from monitor.localstack import stack as localstack
from monitor.localstack.procs import alive, port_open, processes_in, wait_until

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
    assert [again.kafka_pid, again.redis_pid] == recorded_pids(before)  # (the broker may have been restarted earlier)
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
    assert not (sdir / "kafka").exists() and not (sdir / "redis").exists(), "down deletes the stack's data"
    assert localstack.down(sdir, progress=lambda _m: None) is False  # nothing running: fine


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _topic_values(bootstrap: str, topic: str, timeout: float = 30) -> list[bytes]:
    """Everything in `topic` from the start ([] if the topic does not exist)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        async with asyncio.timeout(timeout):
            while len(values) < end:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values += [r.value for r in records]
        return values
    finally:
        await consumer.stop()


def _kill_9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid), 10), f"pid {pid} survived SIGKILL"


def _bound(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def _up_cli(sdir: Path, *args: str) -> subprocess.CompletedProcess:
    """`make stack-up` for a private state dir."""
    return subprocess.run([sys.executable, "-m", "monitor.localstack", "up", "--dir", str(sdir), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


def test_up_restarts_a_killed_broker_on_its_port_with_its_data(tmp_path, unique_name):
    sdir = tmp_path / "stack"
    first = localstack.up(sdir, progress=lambda _m: None)
    try:
        topic = f"restart-{unique_name}"
        asyncio.run(_produce(first.kafka_bootstrap, topic, b"before the kill"))
        _kill_9(first.kafka_pid)
        assert localstack.status(sdir)[1], "a dead broker must make the stack unhealthy"

        res = _up_cli(sdir)  # what `make stack-up` runs
        assert res.returncode == 0, res.stderr
        assert "restarting Kafka" in res.stderr
        assert res.stdout.splitlines() == [f"{k}={v}" for k, v in first.env.items()]  # same ports
        second = localstack.StackInfo.from_state(localstack.read_state(sdir), sdir)
        assert second.kafka_pid != first.kafka_pid and alive(second.kafka_pid)
        assert second.redis_pid == first.redis_pid and alive(first.redis_pid), "the healthy Redis must be kept"
        assert second.cluster_id == first.cluster_id and first.cluster_id
        assert asyncio.run(_topic_values(second.kafka_bootstrap, topic)) == [b"before the kill"]

        # stopped with its data kept (what the demo does to a stack it restarted), then up: both come back
        assert localstack.down(sdir, keep_data=True, progress=lambda _m: None)
        assert not alive(second.kafka_pid) and not alive(second.redis_pid)
        third = localstack.up(sdir, progress=lambda _m: None)
        assert set(third.started) == {"kafka", "redis"} and not third.created
        assert (third.kafka_bootstrap, third.redis_url, third.cluster_id) == (
            first.kafka_bootstrap, first.redis_url, first.cluster_id)
        assert asyncio.run(_topic_values(third.kafka_bootstrap, topic)) == [b"before the kill"]
    finally:
        localstack.down(sdir, progress=lambda _m: None)


def test_up_restarts_a_killed_redis_with_its_aof_and_refuses_a_taken_port(tmp_path):
    import redis

    sdir = tmp_path / "stack"
    first = localstack.up(sdir, redis_aof=True, progress=lambda _m: None)
    port = int(first.redis_url.rsplit(":", 1)[1].split("/")[0])

    def client() -> redis.Redis:
        return redis.Redis.from_url(first.redis_url, socket_timeout=5)

    try:
        with contextlib.closing(client()) as c:
            c.set("survivor", "1")
            assert wait_until(lambda: b"survivor" in b"".join(
                p.read_bytes() for p in (sdir / "redis").rglob("*.aof")), 5), "the AOF (fsync every second)"
        _kill_9(first.redis_pid)
        second = localstack.up(sdir, progress=lambda _m: None)
        assert second.started == ("redis",) and second.redis_url == first.redis_url
        assert second.kafka_pid == first.kafka_pid, "the healthy Kafka must be kept"
        assert second.redis_aof
        with contextlib.closing(client()) as c:
            assert c.get("survivor") == b"1"

        # its port taken by another process: a clear error, and nothing thrown away
        _kill_9(second.redis_pid)
        state = localstack.read_state(sdir)
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # the kernel closes a killed process' listening socket a moment after the process is gone
            assert wait_until(lambda: _bound(squatter, port), 5), f"port {port} did not become free"
            squatter.listen()
            with pytest.raises(StackError, match=rf"port 127\.0\.0\.1:{port} is taken by another process "
                                                  rf"\(pid {os.getpid()}: "):
                localstack.up(sdir, progress=lambda _m: None)
        assert localstack.read_state(sdir) == state
        assert alive(first.kafka_pid) and (sdir / "kafka" / "data" / "meta.properties").is_file()
        third = localstack.up(sdir, redis_aof=False, progress=lambda _m: None)  # port free again; AOF switched off
        assert third.started == ("redis",) and third.redis_url == first.redis_url and not third.redis_aof
        with contextlib.closing(client()) as c:
            assert c.get("survivor") == b"1"
            assert c.config_get("appendonly") == {"appendonly": "no"}
    finally:
        localstack.down(sdir, progress=lambda _m: None)


def test_fresh_discards_the_data_and_down_removes_it(tmp_path, unique_name):
    sdir = tmp_path / "stack"
    topic = f"fresh-{unique_name}"
    first = localstack.up(sdir, progress=lambda _m: None)
    try:
        asyncio.run(_produce(first.kafka_bootstrap, topic, b"old"))
        res = _up_cli(sdir, "--fresh")
        assert res.returncode == 0, res.stderr
        assert "--fresh: discarding" in res.stderr
        second = localstack.StackInfo.from_state(localstack.read_state(sdir), sdir)
        assert not alive(first.kafka_pid) and not alive(first.redis_pid)
        assert second.cluster_id != first.cluster_id
        assert asyncio.run(_topic_values(second.kafka_bootstrap, topic)) == []
    finally:
        assert localstack.down(sdir, progress=lambda _m: None)
    assert not alive(second.kafka_pid) and not alive(second.redis_pid)
    assert not (sdir / "kafka").exists() and not (sdir / "redis").exists()
    assert not (sdir / "state.json").exists() and not (sdir / "env").exists()


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
