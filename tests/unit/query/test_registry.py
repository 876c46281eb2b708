"""The worker registry's partition of an order: Kafka's default partitioner."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from monitor.query.registry import partition_for


def test_partition_matches_aiokafka_default_partitioner():
    partitioner = DefaultPartitioner()
    keys_ = ["", "a", "o1", "BB-17", "order:with:colons", "ünïcødé-订单", "x" * 300] + [f"o-{i}" for i in range(500)]
    for n in (1, 2, 3, 4, 6, 12, 1000):
        parts = list(range(n))
        for key in keys_:
            assert partition_for(key, n) == partitioner(key.encode("utf-8"), parts, parts), (key, n)


def test_partition_matches_the_java_client():
    # values of the Java client's Utils.murmur2-based default partitioner with 1000 partitions
    assert [partition_for(k, 1000) for k in ("", "a", "ab", "abc", "123456789", "\x00 ")] == [681, 524, 434, 107,
                                                                                             566, 742]
