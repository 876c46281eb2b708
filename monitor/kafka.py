"""The one place that builds Kafka clients: every aiokafka consumer, producer and admin client of the package, and
the broker settings of the Faust app, are made here from `Settings`, so connection settings (servers, and the
security options a cluster asks for) are decided once.

aiokafka is imported when a client is built, so commands that never talk to Kafka (`slamon replay`) do not load it.
"""

from __future__ import annotations

from typing import Any

from .settings import Settings


def connection(settings: Settings) -> dict[str, Any]:
    """The keyword arguments every aiokafka client takes to reach the cluster."""
    return {"bootstrap_servers": settings.kafka_bootstrap}


def consumer(settings: Settings, *topics: str, client_id: str, **options: Any) -> Any:
    """An `AIOKafkaConsumer` (not started). `options` are aiokafka's (group_id, auto_offset_reset, ...).
    It reads `read_committed`: the worker writes its outputs and table changelog in transactions, and a fenced or
    killed worker's aborted writes must stay invisible."""
    from aiokafka import AIOKafkaConsumer

    options.setdefault("isolation_level", "read_committed")
    return AIOKafkaConsumer(*topics, client_id=client_id, **connection(settings), **options)


def producer(settings: Settings, *, client_id: str, **options: Any) -> Any:
    """An `AIOKafkaProducer` (not started)."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(client_id=client_id, **connection(settings), **options)


def admin(settings: Settings, *, client_id: str, **options: Any) -> Any:
    """An `AIOKafkaAdminClient` (not started)."""
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(client_id=client_id, **connection(settings), **options)


def faust_broker(settings: Settings, scheme: str = "kafka") -> dict[str, Any]:
    """The broker arguments of `faust.App` (Faust takes `<scheme>://host:port` URLs, `;`-separated; the scheme
    names the transport driver)."""
    return {"broker": ";".join(f"{scheme}://{h.strip()}" for h in settings.kafka_bootstrap.split(","))}


async def partitions_of(client: Any, topic: str) -> set[int]:
    """The partitions of `topic` as a started consumer sees them, refreshing metadata until the topic shows (a
    topic just created takes a moment to appear in every broker's metadata)."""
    parts = client.partitions_for_topic(topic)
    while not parts:
        await client._client.force_metadata_update()
        parts = client.partitions_for_topic(topic)
    return parts
