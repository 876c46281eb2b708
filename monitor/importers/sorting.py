"""Lines put in time order with bounded memory: an external merge sort. Lines are kept in memory up to a chunk,
then each full chunk is sorted and spilled to a temporary file, and the spilled runs are merged at the end.
Ties keep the order the lines were added in."""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Iterator
from typing import IO

CHUNK = 250_000  # lines held in memory before a sorted run is spilled (a few hundred bytes each)


class TimeSorter:
    def __init__(self, chunk: int = CHUNK):
        self.chunk = chunk
        self.buffer: list[tuple[int, int, bytes]] = []
        self.runs: list[IO[bytes]] = []
        self.count = 0

    def add(self, at: int, line: bytes) -> None:
        """A line (ending with its newline) at instant `at`."""
        self.buffer.append((at, self.count, line))
        self.count += 1
        if len(self.buffer) >= self.chunk:
            self._spill()

    def _spill(self) -> None:
        self.buffer.sort()
        run = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        run.writelines(b"%d %d %s" % item for item in self.buffer)
        run.seek(0)
        self.runs.append(run)
        self.buffer = []

    @staticmethod
    def _read(run: IO[bytes]) -> Iterator[tuple[int, int, bytes]]:
        for raw in run:
            at, seq, line = raw.split(b" ", 2)
            yield int(at), int(seq), line

    def lines(self) -> Iterator[bytes]:
        """Every line added, in order of (instant, order added)."""
        if not self.runs:
            self.buffer.sort()
            yield from (line for _, _, line in self.buffer)
            return
        if self.buffer:
            self._spill()
        yield from (line for _, _, line in heapq.merge(*(self._read(run) for run in self.runs)))

    def close(self) -> None:
        for run in self.runs:
            run.close()
        self.runs = []
        self.buffer = []
