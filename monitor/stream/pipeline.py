"""Commits of one worker's batches, off the processing path: a partition's next batch grows while its previous one
commits.

A batch's transaction takes several broker round trips (add partitions, produce, add offsets, commit); waiting for
it before reading on left the worker idle for a good part of a backlog drain, and delayed the ticks behind it. Here
each partition has at most one transaction running. While it runs, the messages processed meanwhile collect in the
partition's next batch (in the processor); when the transaction has committed, `take_next` hands that batch over
and its transaction starts at once. So the worker never waits for a commit unless a partition's next batch has
grown past its limit (`wait_idle`, back-pressure), batches are as large as the broker's round trips make them, and a
partition's transactions run one at a time, in order, on its one producer. Under a light load a partition's
transactions start at least `interval_s` apart (the batch in between grows), so that a trickle of events does not
cost a transaction per fetch.

The batch in flight stays readable: the processor reads an order's value from the partition's growing batch first,
then from its batch in flight, then from the local store, which receives a batch's values only after its
transaction committed. So a batch is computed from exactly the state the batches before it left, committed or not;
a crash loses only uncommitted batches, whose input offsets were not committed either: they are read and processed
again.

A failed commit (fenced, or an error the writer does not retry) ends the worker: the batches after it were computed
from its values. The writer retries a transaction while the broker is away, so a commit may take long; it must not
take forever (alive and deaf): `stalled_for` tells how long the running commit has been running (the worker is not
ready while it is over a minute), and a commit still running after `deadline_s` ends the worker (its supervisor
restarts it; the partition's next owner aborts the open transaction). `settle` waits until nothing is in flight
(revocation, stop), committing the batches that grew meanwhile too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .fatal import fatal
from .writer import Fenced


class CommitPipeline:
    def __init__(self, commit: Callable[[Any], Awaitable[None]], take_next: Callable[[int], Any | None],
                 inflight: dict[int, list[Any]], deadline_s: float = 16 * 60.0, interval_s: float = 0.0,
                 on_fatal: Callable[[str, BaseException], Any] = fatal, clock: Callable[[], float] = time.monotonic):
        self._commit = commit  # commits one batch (transaction, then the local store)
        self._take_next = take_next  # the partition's next batch to commit, or None
        self.inflight = inflight  # partition -> its batch in flight (a list, read by the processor)
        self.deadline_s = deadline_s
        self.interval_s = interval_s  # a partition's transactions start at least this far apart
        self._fatal = on_fatal
        self._clock = clock
        self._running: dict[int, asyncio.Task] = {}
        self._started: dict[int, float] = {}

    def busy(self, partition: int) -> bool:
        return partition in self._running

    def stalled_for(self) -> float:
        """Seconds the longest-running commit has been running (0 when none runs)."""
        if not self._started:
            return 0.0
        return self._clock() - min(self._started.values())

    def submit(self, batch: Any) -> None:
        """Start committing `batch`; its partition must not be busy."""
        p = batch.partition
        assert p not in self._running, f"partition {p} has a commit running"
        self.inflight[p] = [batch]
        self._started[p] = self._clock()
        self._running[p] = asyncio.ensure_future(self._run(batch))

    async def wait_idle(self, partition: int) -> None:
        """Wait until the partition's running commit (if any) has finished."""
        task = self._running.get(partition)
        if task is not None:
            await asyncio.shield(task)

    async def _run(self, batch: Any) -> None:
        p = batch.partition
        started = self._clock()
        try:
            try:
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
                self.inflight.pop(p, None)
                self._started.pop(p, None)
            # a light load must not cost a transaction per fetch: the next batch grows for the rest of the interval
            rest = self.interval_s - (self._clock() - started)
            if rest > 0:
                await asyncio.sleep(rest)
        finally:
            if self._running.get(p) is asyncio.current_task():
                del self._running[p]
        following = self._take_next(p)
        if following is not None:
            self.submit(following)

    async def settle(self) -> None:
        """Wait until no commit runs, the batches that grew meanwhile committed too."""
        while self._running:
            await asyncio.gather(*(asyncio.shield(t) for t in list(self._running.values())),
                                 return_exceptions=True)
