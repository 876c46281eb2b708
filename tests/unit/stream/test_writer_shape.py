"""The writer (writer.py) places a record without a partition with the producer's own partitioner and the cluster
metadata, as aiokafka's send() does: this test fails when aiokafka changes those names. (The records' placement
itself is tested against a real broker in tests/integration/test_writer.py.)"""

from __future__ import annotations

import inspect

from aiokafka import AIOKafkaProducer
from aiokafka.cluster import ClusterMetadata
from aiokafka.partitioner import DefaultPartitioner


def test_aiokafka_still_has_the_names_the_writer_uses():
    init = inspect.getsource(AIOKafkaProducer.__init__)
    assert "self._partitioner = partitioner" in init and "self.client = " in init
    assert "self._partitioner(serialized_key, all_partitions, available)" in inspect.getsource(
        AIOKafkaProducer._partition)
    for name in ("create_batch", "send_batch", "partitions_for", "begin_transaction", "commit_transaction"):
        assert callable(getattr(AIOKafkaProducer, name))
    assert callable(ClusterMetadata.available_partitions_for_topic)
    assert DefaultPartitioner()(b"order-1", [0, 1, 2], [0, 1, 2]) in (0, 1, 2)
