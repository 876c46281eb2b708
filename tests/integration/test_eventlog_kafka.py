"""`slamon report --from-kafka` and `slamon backtest --from-kafka` against the real local broker: events spread over
three partitions, each out of time order with the others, plus a malformed record and an aborted transaction,
give the same report and backtest as the same events read from a file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from monitor import eventlog_kafka
from monitor.eventlog_kafka import KafkaReadError, read_kafka_events
from monitor.settings import Settings

from ..unit.runs_oracle import POLICY_YAML, generate, write_events, write_policies
from .live import Topics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def _abort(bootstrap: str, topic: str, event: dict) -> None:
    """A record written in a transaction that is then aborted: a read_committed reader never sees it."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"abort-{topic}")
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send(topic, orjson.dumps(event), key=event["order_id"].encode())
        await producer.abort_transaction()
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def loaded(stack, tmp_path_factory):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    created = slamon(stack, prefix, "topics", "apply", "--partitions", "3")
    assert created.returncode == 0, created.stderr.decode()
    events = generate(17, orders=150)
    topics = Topics(stack.kafka_bootstrap, prefix)
    topics.produce_fast(events)  # keyed by order: an order's events on one partition, the partitions interleaved
    topics.produce([b"not json"], keys=[None])
    asyncio.run(_abort(stack.kafka_bootstrap, topics.name("workflow.events"),
                       {**events[0], "event_id": "ghost", "order_id": "ghost"}))
    d = tmp_path_factory.mktemp("fromkafka")
    file_events = write_events(d / "events.jsonl", events)
    with file_events.open("ab") as f:
        f.write(b"not json\n")
    yield stack, prefix, d, str(file_events)
    asyncio.run(_drop(stack.kafka_bootstrap, prefix))


async def _drop(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(prefix)])
    finally:
        await admin.close()


def slamon(stack, prefix, *args):
    env = {**os.environ, "SLAMON_KAFKA_BOOTSTRAP": stack.kafka_bootstrap, "SLAMON_TOPIC_PREFIX": prefix}
    proc = subprocess.run([sys.executable, "-m", "monitor.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          timeout=180)
    return proc


def test_report_from_kafka_equals_the_report_of_the_file(loaded):
    stack, prefix, d, events = loaded
    policies = str(write_policies(d / "policies"))
    common = ["report", "--policies", policies, "--period", "day", "--timezone", "America/New_York", "--format",
              "json", "--by-segment"]
    from_kafka = slamon(stack, prefix, *common, "--from-kafka")
    assert from_kafka.returncode == 0, from_kafka.stderr.decode()
    from_file = slamon(stack, prefix, *common, "--events", events)
    assert from_file.returncode == 0, from_file.stderr.decode()
    doc = orjson.loads(from_kafka.stdout)
    assert doc == orjson.loads(from_file.stdout) and len(doc["periods"]) >= 5
    assert "ghost" not in from_kafka.stdout.decode()  # the aborted transaction stays invisible


def test_backtest_from_kafka_equals_the_backtest_of_the_file(loaded):
    stack, prefix, d, events = loaded
    current = str(write_policies(d / "current"))
    candidate = str(write_policies(d / "candidate", POLICY_YAML.replace("commitment: 60m", "commitment: 15m")))
    common = ["backtest", "--policies", current, "--candidate", candidate, "--json"]
    from_kafka = slamon(stack, prefix, *common, "--from-kafka")
    assert from_kafka.returncode == 0, from_kafka.stderr.decode()
    doc = orjson.loads(from_kafka.stdout)
    assert doc == orjson.loads(slamon(stack, prefix, *common, "--events", events).stdout)
    assert doc["changed"]


def test_the_reader_returns_every_record_in_time_order_the_malformed_first(loaded):
    stack, prefix, _, events = loaded
    settings = Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": stack.kafka_bootstrap, "SLAMON_TOPIC_PREFIX": prefix})
    items = read_kafka_events(settings)
    assert type(items[0]).__name__ == "Malformed"
    times = [i.at for i in items[1:]]
    assert times == sorted(times) and len(times) == sum(1 for _ in open(events)) - 1


def test_a_missing_topic_or_broker_is_one_line(loaded, monkeypatch):
    stack, _, _, _ = loaded
    monkeypatch.setattr(eventlog_kafka, "METADATA_TIMEOUT_S", 3)
    settings = Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
                                  "SLAMON_TOPIC_PREFIX": f"missing{uuid.uuid4().hex[:6]}."})
    with pytest.raises(KafkaReadError, match="no topic missing.*workflow.events at"):
        read_kafka_events(settings)
    env_bad = {**os.environ, "SLAMON_KAFKA_BOOTSTRAP": "127.0.0.1:1", "SLAMON_TOPIC_PREFIX": ""}
    bad = subprocess.run([sys.executable, "-m", "monitor.cli", "backtest", "--policies", str(write_policies(
        Path(loaded[2]) / "p2")), "--candidate", str(Path(loaded[2]) / "p2"), "--from-kafka"], cwd=ROOT, env=env_bad,
        capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert bad.stderr.startswith("slamon backtest: --from-kafka: cannot reach Kafka at 127.0.0.1:1")
