"""Per-partition min-heaps of (deadline, order key): which orders need the clock next.

Entries are never removed when an order moves on; a popped entry whose deadline no longer matches the order's
stored deadline is stale and skipped by the caller.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator


class DeadlineIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, bytes]]] = {}

    def partitions(self) -> set[int]:
        return set(self._heaps)

    def reset(self, partition: int, entries: Iterable[tuple[int, bytes]] = ()) -> None:
        heap = list(entries)
        heapq.heapify(heap)
        self._heaps[partition] = heap

    def drop(self, partition: int) -> None:
        self._heaps.pop(partition, None)

    def push(self, partition: int, deadline: int, key: bytes) -> None:
        heap = self._heaps.get(partition)
        if heap is None:
            heap = self._heaps[partition] = []
        heapq.heappush(heap, (deadline, key))

    def pop_due(self, partition: int, before: int) -> Iterator[tuple[int, bytes]]:
        """Pop every entry with deadline < before (a crossing is announced only once strictly past)."""
        heap = self._heaps.get(partition)
        while heap and heap[0][0] < before:
            yield heapq.heappop(heap)

    def size(self, partition: int) -> int:
        return len(self._heaps.get(partition, ()))

