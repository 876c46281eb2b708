"""Lines put in time order with bounded memory: an external merge sort. Lines are kept in memory up to a chunk,
then each full chunk is sorted and spilled to a temporary file (the lines as they are; their times stay in memory,
8 bytes a line), and the spilled runs are merged at the end. Ties keep the order the lines were added in."""

from __future__ import annotations

import heapq
import tempfile
from array import array
from collections.abc import Iterator
from operator import itemgetter
from typing import IO

CHUNK = 250_000  # lines held in memory before a sorted run is spilled (a few hundred bytes each)

_AT, _LINE = itemgetter(0), itemgetter(1)


class TimeSorter:
    def __init__(self, chunk: int = CHUNK):
        self.chunk = chunk
        self.buffer: list[tuple[int, bytes]] = []
        self.runs: list[tuple[array, IO[bytes]]] = []  # (the times of a run's lines, its file of lines)

    def add(self, at: int, line: bytes) -> None:
        """A line (one line, ending with its newline) at instant `at` (microseconds)."""
        self.buffer.append((at, line))
        if len(self.buffer) >= self.chunk:
            self._spill()

    def _spill(self) -> None:
        self.buffer.sort(key=_AT)  # stable: ties in the order added
        run = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        run.writelines(map(_LINE, self.buffer))
        run.seek(0)
        self.runs.append((array("q", map(_AT, self.buffer)), run))
        self.buffer = []

    def lines(self) -> Iterator[bytes]:
        """Every line added, in order of (instant, order added)."""
        if not self.runs:
            self.buffer.sort(key=_AT)
            return map(_LINE, self.buffer)
        if self.buffer:
            self._spill()
        # heapq.merge yields equal keys in the order of its inputs: the earlier run's lines were added first
        return map(_LINE, heapq.merge(*(zip(times, run, strict=True) for times, run in self.runs),
                                      key=_AT))

    def close(self) -> None:
        for _, run in self.runs:
            run.close()
        self.runs = []
        self.buffer = []
