"""Partition offsets read on a connection of the worker's own.

Not Faust's consumer (`app.consumer.highwaters()`): it long-polls with fetch_max_wait_ms=1500 and Kafka answers one
request per connection at a time, so an offsets request would wait behind the poll. Started on first use, in the
worker's loop.
"""

from __future__ import annotations

from typing import Any

from faust.types import TP

from .. import kafka
from ..settings import Settings


class Offsets:
    def __init__(self, settings: Settings, client_id: str):
        self.settings = settings
        self.client_id = client_id
        self._client: Any = None

    async def _started(self) -> Any:
        if self._client is None:
            client = kafka.consumer(self.settings, client_id=self.client_id, group_id=None)
            await client.start()
            self._client = client
        return self._client

    async def end(self, tps: list[TP]) -> dict[TP, int]:
        """The end offset (offset of the next record written) of each partition."""
        if not tps:
            return {}
        from aiokafka import TopicPartition

        ends = await (await self._started()).end_offsets([TopicPartition(tp.topic, tp.partition) for tp in tps])
        return {TP(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def beginning(self, tps: list[TP]) -> dict[TP, int]:
        """The first offset still in the log of each partition."""
        if not tps:
            return {}
        from aiokafka import TopicPartition

        begins = await (await self._started()).beginning_offsets([TopicPartition(tp.topic, tp.partition)
                                                                   for tp in tps])
        return {TP(tp.topic, tp.partition): begin for tp, begin in begins.items()}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.stop()
