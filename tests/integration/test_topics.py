"""`slamon topics apply` against the real local broker, then keyed produce / group consume / commit on the topics.

Every test works under its own topic-name prefix, so tests never collide, and deletes its topics afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from jsonschema import Draft202012Validator

from monitor.catalogue import catalogue_by_name, load_catalogue, load_schema
from monitor.catalogue.admin import apply_topics
from monitor.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LOGICAL = ["workflow.events", "sla.ticks", "sla.warnings", "sla.outcomes", "sla.deadletter", "sla.policies"]


def slamon_topics(*args: str) -> subprocess.CompletedProcess:
    """`slamon topics ARGS` in a fresh process, through the `slamon` command's own entry point."""
    return subprocess.run([sys.executable, "-m", "monitor.cli", "topics", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def lines_by_topic(stdout: str) -> dict[str, str]:
    return {line.split(":", 1)[0]: line for line in stdout.splitlines() if ":" in line}


def kafka_settings(bootstrap: str) -> Settings:
    return Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": bootstrap})


async def _with_admin(bootstrap: str, fn):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        return await fn(admin)
    finally:
        await admin.close()


def describe(bootstrap: str, names: list[str]) -> tuple[dict, dict]:
    """(metadata by topic, configs by topic) of existing topics among `names`."""

    async def go(admin):
        meta = {t["topic"]: t for t in await admin.describe_topics() if t["topic"] in names}
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in meta]
        configs = {}
        for response in await admin.describe_configs(resources):
            for res in response.to_object()["resources"]:
                assert res["error_code"] == 0, res
                configs[res["resource_name"]] = {e["config_names"]: e["config_value"] for e in res["config_entries"]}
        return meta, configs

    return asyncio.run(_with_admin(bootstrap, go))


def create_topics(bootstrap: str, topics: list[NewTopic]) -> None:
    async def go(admin):
        response = await admin.create_topics(topics)
        assert all(e["error_code"] == 0 for e in response.to_object()["topic_errors"]), response
        deadline = time.monotonic() + 30
        names = {t.name for t in topics}
        while time.monotonic() < deadline:
            meta = {t["topic"]: t for t in await admin.describe_topics() if t["topic"] in names}
            if len(meta) == len(names) and all(
                m["partitions"] and all(p["leader"] >= 0 for p in m["partitions"]) for m in meta.values()
            ):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"topics {names} not ready after 30 s")

    asyncio.run(_with_admin(bootstrap, go))


@pytest.fixture
def prefix(stack):
    """A unique topic-name prefix; the topics under it are deleted after the test."""
    value = f"it-{uuid.uuid4().hex[:10]}."
    yield value

    async def cleanup(admin):
        names = [n for n in await admin.list_topics() if n.startswith(value)]
        if names:
            await admin.delete_topics(names)

    asyncio.run(_with_admin(stack.kafka_bootstrap, cleanup))


def test_apply_creates_every_topic_then_reports_ok(stack, prefix):
    bootstrap = stack.kafka_bootstrap
    first = slamon_topics("apply", "--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4")
    assert first.returncode == 0, first.stdout + first.stderr
    lines = lines_by_topic(first.stdout)
    assert sorted(lines) == sorted(prefix + n for n in LOGICAL), first.stdout
    assert all(": created" in line for line in lines.values()), first.stdout

    names = [prefix + n for n in LOGICAL]
    meta, configs = describe(bootstrap, names)
    assert sorted(meta) == sorted(names)
    partitions = {n[len(prefix):]: len(m["partitions"]) for n, m in meta.items()}
    assert partitions == {"workflow.events": 4, "sla.ticks": 4, "sla.warnings": 6, "sla.outcomes": 6,
                          "sla.deadletter": 6, "sla.policies": 1}
    assert all(len(p["replicas"]) == 1 for m in meta.values() for p in m["partitions"])
    assert configs[prefix + "sla.policies"]["cleanup.policy"] == "compact"
    assert configs[prefix + "sla.policies"]["retention.ms"] == "-1"
    assert configs[prefix + "sla.ticks"]["retention.ms"] == "3600000"
    assert configs[prefix + "sla.ticks"]["cleanup.policy"] == "delete"
    assert configs[prefix + "sla.deadletter"]["retention.ms"] == "2592000000"
    assert configs[prefix + "workflow.events"]["cleanup.policy"] == "delete"

    second = slamon_topics("apply", "--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "4")
    assert second.returncode == 0, second.stdout + second.stderr
    lines = lines_by_topic(second.stdout)
    assert len(lines) == len(LOGICAL)
    assert all(line.startswith(f"{name}: ok") for name, line in lines.items()), second.stdout

    # the Python API the worker uses says the same
    reports = asyncio.run(apply_topics(kafka_settings(bootstrap), load_catalogue(partitions=4, prefix=prefix)))
    assert [(r.topic, r.status) for r in reports] == [(n, "ok") for n in names]

    # without --partitions the catalogue wants 6 for workflow.events: reported, not changed
    third = slamon_topics("apply", "--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "6")
    assert third.returncode == 1
    assert f"{prefix}workflow.events: differs: partitions: wanted 6, actual 4" in third.stdout
    assert f"{prefix}sla.ticks: ok" in third.stdout  # follows what workflow.events actually has
    meta, _ = describe(bootstrap, [prefix + "workflow.events"])
    assert len(meta[prefix + "workflow.events"]["partitions"]) == 4


def test_apply_reports_differences_and_changes_nothing(stack, prefix):
    bootstrap = stack.kafka_bootstrap
    events, ticks, policies = prefix + "workflow.events", prefix + "sla.ticks", prefix + "sla.policies"
    create_topics(bootstrap, [
        NewTopic(events, 2, 1),
        NewTopic(policies, 3, 1, topic_configs={"cleanup.policy": "delete", "retention.ms": "86400000"}),
    ])

    result = slamon_topics("apply", "--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "5")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = lines_by_topic(result.stdout)
    assert lines[events] == f"{events}: differs: partitions: wanted 5, actual 2"
    assert lines[policies].startswith(f"{policies}: differs: ")
    for difference in ("partitions: wanted 1, actual 3", "cleanup.policy: wanted compact, actual delete",
                       "retention.ms: wanted -1, actual 86400000"):
        assert difference in lines[policies]
    # sla.ticks is created co-partitioned with the workflow.events that exists, not with the wanted 5
    assert lines[ticks].startswith(f"{ticks}: created")
    for other in ("sla.warnings", "sla.outcomes", "sla.deadletter"):
        assert lines[prefix + other].startswith(f"{prefix}{other}: created")
    assert "differ" in result.stderr

    meta, configs = describe(bootstrap, [events, ticks, policies])
    assert len(meta[events]["partitions"]) == 2
    assert len(meta[ticks]["partitions"]) == 2
    assert len(meta[policies]["partitions"]) == 3
    assert configs[policies]["cleanup.policy"] == "delete"

    # the same through the Python API
    by = {r.topic: r for r in asyncio.run(apply_topics(kafka_settings(bootstrap), load_catalogue(partitions=5, prefix=prefix)))}
    assert by[events].status == "differs"
    assert [(d.setting, d.wanted, d.actual) for d in by[events].differences] == [("partitions", "5", "2")]
    assert by[ticks].status == "ok"
    assert {d.setting for d in by[policies].differences} == {"partitions", "cleanup.policy", "retention.ms"}


def test_keyed_produce_group_consume_and_committed_offsets(stack, prefix):
    bootstrap = stack.kafka_bootstrap
    applied = slamon_topics("apply", "--bootstrap", bootstrap, "--prefix", prefix, "--partitions", "3")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    topic = catalogue_by_name(load_catalogue(partitions=3, prefix=prefix))["workflow.events"].name
    schema = Draft202012Validator(load_schema("workflow.events"))

    events = []
    for o in range(8):
        order = f"order-{o}"
        for i, (kind, node) in enumerate([("node_started", "survey"), ("node_completed", "survey"),
                                          ("node_started", "install"), ("order_completed", None)]):
            event = {"event_id": f"{order}-{i}", "order_id": order, "process": "broadband_install",
                     "type": kind, "at": f"2026-11-21T08:0{i}:00.5+01:00"}
            if node:
                event["node"] = node
            schema.validate(event)
            events.append(event)
    group = f"{prefix}group"

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for event in events:
                await producer.send(topic, json.dumps(event).encode(), key=event["order_id"].encode())
            await producer.flush()
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        received = []
        try:
            deadline = time.monotonic() + 60
            while len(received) < len(events) and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    received.extend(records)
            assert len(received) == len(events), f"received {len(received)} of {len(events)} in 60 s"
            await consumer.commit()
            tps = [TopicPartition(topic, p) for p in range(3)]
            committed = {tp.partition: await consumer.committed(tp) for tp in tps}
            ends = {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()

        async def group_offsets(admin):
            return await admin.list_consumer_group_offsets(group)

        by_admin = await _with_admin(bootstrap, group_offsets)
        return received, committed, ends, by_admin

    received, committed, ends, by_admin = asyncio.run(go())

    # keyed: every order on one partition, its events in the order they were produced
    partition_of: dict[str, set[int]] = {}
    for record in received:
        partition_of.setdefault(record.key.decode(), set()).add(record.partition)
    assert all(len(parts) == 1 for parts in partition_of.values()), partition_of
    assert len({next(iter(p)) for p in partition_of.values()}) > 1, "8 keys all on one of 3 partitions"
    for order in partition_of:
        mine = [json.loads(r.value)["event_id"] for r in received if r.key.decode() == order]
        assert mine == [f"{order}-{i}" for i in range(4)]

    # committed offsets: the next offset to read, on every partition, as the group coordinator reports it
    # (a partition that got no message may have no committed offset at all: None / absent means 0)
    assert sum(ends.values()) == len(events)
    assert {p: off or 0 for p, off in committed.items()} == ends
    by_admin = {tp.partition: meta.offset for tp, meta in by_admin.items() if tp.topic == topic}
    assert {p: by_admin.get(p, 0) for p in ends} == ends


def test_concurrent_applies_race_safely(stack, prefix):
    """Workers starting together all apply the catalogue: one creates each topic, the others find it (the
    broker answers them TOPIC_ALREADY_EXISTS); nobody fails and nobody reports a difference."""
    bootstrap = stack.kafka_bootstrap
    specs = load_catalogue(partitions=2, prefix=prefix)

    async def go():
        return await asyncio.gather(*(apply_topics(kafka_settings(bootstrap), specs, client_id=f"w{i}") for i in range(4)))

    results = asyncio.run(go())
    for reports in results:
        assert [r.topic for r in reports] == [s.name for s in specs]
        assert all(r.status in ("created", "ok") for r in reports), [r.line() for r in reports]
    for i, spec in enumerate(specs):
        assert [r[i].status for r in results].count("created") <= 1, spec.name
    meta, _ = describe(bootstrap, [s.name for s in specs])
    assert {n: len(m["partitions"]) for n, m in meta.items()} == {s.name: s.partitions for s in specs}


# ------------------------------------------------------------------------------------------ setup traps


def test_policy_apply_on_a_fresh_cluster_creates_sla_policies_compacted(stack, unique_name):
    # before, the broker auto-created sla.policies with delete retention: published policies vanished after 7 days
    prefix = f"pa-{unique_name}."
    pol = ROOT / "deploy" / "demo" / "policies"
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "policy", "apply", str(pol), "--bootstrap",
                        stack.kafka_bootstrap, "--prefix", prefix], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    names = [prefix + n for n in ("sla.policies", "workflow.events", "sla.warnings")]
    meta, configs = describe(stack.kafka_bootstrap, names)
    assert set(meta) == set(names)
    assert configs[prefix + "sla.policies"]["cleanup.policy"] == "compact"
    assert configs[prefix + "sla.policies"]["retention.ms"] == "-1"


def test_the_worker_refuses_a_policies_topic_that_deletes_old_records(stack, unique_name, tmp_path):
    prefix = f"pd-{unique_name}."
    create_topics(stack.kafka_bootstrap, [NewTopic(prefix + "sla.policies", 1, 1,
                                                   topic_configs={"cleanup.policy": "delete"})])
    env = {**os.environ, "SLAMON_KAFKA_BOOTSTRAP": stack.kafka_bootstrap, "SLAMON_TOPIC_PREFIX": prefix,
           "SLAMON_APP_ID": prefix.rstrip("."), "SLAMON_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1
    assert "sla.policies" in r.stderr and "cleanup.policy" in r.stderr and "slamon topics apply" in r.stderr
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "policy", "apply", str(ROOT / "deploy/demo/policies"),
                        "--bootstrap", stack.kafka_bootstrap, "--prefix", prefix], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and "nothing published" in r.stderr


def test_topics_apply_honours_the_prefix_from_the_environment(stack, unique_name):
    prefix = f"te-{unique_name}."
    env = {**os.environ, "SLAMON_KAFKA_BOOTSTRAP": stack.kafka_bootstrap, "SLAMON_TOPIC_PREFIX": prefix}
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "topics", "apply"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    meta, _ = describe(stack.kafka_bootstrap, [prefix + "sla.warnings"])
    assert prefix + "sla.warnings" in meta
