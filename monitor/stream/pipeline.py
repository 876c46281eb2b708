"""Commits of one worker's batches, pipelined: the next batch is processed while the previous ones commit.

A batch's transaction takes several broker round trips (add partitions, produce, add offsets, commit); waiting for
it before reading on left the worker idle for a good part of a backlog drain. Here each partition has a chain of
commits: a batch's transaction starts only after the partition's previous one committed (one producer, one
transaction at a time, in order), and while it runs the batch stays *in flight*: the processor reads an order's
value from the partition's current batch first, then from its batches in flight (newest first), then from the
local store, which receives a batch's values only after its transaction committed. So the state a batch is
computed from is always the state the batches before it (committed or not) left, and a crash loses only
uncommitted batches, whose input offsets were not committed either: they are read and processed again.

At most `depth` batches of a partition are in flight; `submit` waits for the oldest beyond that (back-pressure).
A revoked partition's chain is finished (`settle`) before its producer is closed, so a revocation never cuts a
transaction off (which would look like fencing). A failed commit (fenced, or an error the writer does not retry)
ends the worker: the batches after it were computed from its values.

The writer retries a transaction while the broker is away, so a commit may take long; it must not take forever
(alive and deaf): `stalled_for` tells how long the oldest commit has been running (the worker is not ready while
it is over a minute), and a commit still running after `deadline_s` ends the worker (its supervisor restarts it;
the partition's next owner aborts the open transaction).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .fatal import fatal
from .writer import Fenced


class CommitPipeline:
    def __init__(self, commit: Callable[[Any], Awaitable[None]], inflight: dict[int, list[Any]], depth: int = 2,
                 deadline_s: float = 16 * 60.0, on_fatal: Callable[[str, BaseException], Any] = fatal,
                 clock: Callable[[], float] = time.monotonic):
        self._commit = commit  # commits one batch (transaction, then the local store)
        self.inflight = inflight  # partition -> its batches in flight, oldest first (read by the processor)
        self.depth = depth
        self.deadline_s = deadline_s
        self._fatal = on_fatal
        self._clock = clock
        self._tasks: dict[int, list[asyncio.Task]] = {}
        self._committing: dict[asyncio.Task, float] = {}  # commit -> when its transaction started

    def stalled_for(self) -> float:
        """Seconds the longest-running commit has been running (0 when none runs)."""
        if not self._committing:
            return 0.0
        return self._clock() - min(self._committing.values())

    def pending(self, partition: int) -> int:
        return len(self._tasks.get(partition, ()))

    async def submit(self, batch: Any) -> None:
        """Start committing `batch` after the partition's earlier batches; returns once at most `depth` batches of
        the partition are in flight."""
        p = batch.partition
        tasks = self._tasks.setdefault(p, [])
        previous = tasks[-1] if tasks else None
        self.inflight.setdefault(p, []).append(batch)
        task = asyncio.ensure_future(self._run(batch, previous))
        tasks.append(task)
        while len(tasks) > self.depth:
            await asyncio.shield(tasks[0])

    async def _run(self, batch: Any, previous: asyncio.Task | None) -> None:
        p = batch.partition
        try:
            if previous is not None:
                await asyncio.shield(previous)
            self._committing[asyncio.current_task()] = self._clock()
            await asyncio.wait_for(self._commit(batch), self.deadline_s)
        except TimeoutError as exc:
            self._fatal(f"a batch did not commit within {self.deadline_s:.0f} s (partition {p}); stopping", exc)
        except Fenced as exc:
            self._fatal("another worker owns a partition of this worker now (fenced); stopping", exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - later batches were computed from this one's values
            self._fatal("committing a batch failed", exc)
        finally:
            self._committing.pop(asyncio.current_task(), None)
            batches = self.inflight.get(p)
            if batches and batch in batches:
                batches.remove(batch)
            tasks = self._tasks.get(p)
            if tasks and asyncio.current_task() in tasks:
                tasks.remove(asyncio.current_task())

    async def settle(self, partitions: Iterable[int] | None = None) -> None:
        """Wait until the batches in flight of `partitions` (all when None) have committed."""
        chosen = list(self._tasks) if partitions is None else list(partitions)
        tasks = [t for p in chosen for t in self._tasks.get(p, ())]
        if tasks:
            await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)
