"""The only way a worker writes what it derives: one Kafka transaction per partition and batch, holding the batch's
outputs (warnings, outcomes, dead letters), its order-table changelog records and the consumed offsets.

Each owned events partition p has its own transactional producer, id `<app id>-orders-<p>`, started when p is
assigned to this worker. Starting it (`initTransactions`) fences every earlier producer with that id: a worker that
lost p (paused past the session timeout, cut off, killed) can no longer commit anything for p, and its open
transaction is aborted. Readers that read `read_committed` (table recovery, the board, the notifier) therefore never
see a fenced worker's writes, and never see a batch's outputs without its table values or the reverse.

A producer is only ever started at assignment: restarting it later could fence the partition's new owner with a
batch computed from old state. So a transaction that fails for a passing cause (broker away, timeouts) is aborted
and retried with the same producer until it commits; `Fenced` means this worker must stop (a new owner exists, or
the producer can no longer be used).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from .. import kafka
from ..settings import Settings

log = logging.getLogger("slamon.writer")

# Long enough to ride out a broker outage with a transaction open (the broker's transaction.max.timeout.ms is
# 15 minutes by default); a worker that dies with a transaction open has it aborted when the partition's next
# owner starts its producer, long before this.
TRANSACTION_TIMEOUT_MS = 15 * 60 * 1000
RETRY_FIRST_S = 0.2
RETRY_MOST_S = 5.0


class Fenced(Exception):
    """This worker can no longer write for the partition: another producer with its transactional id started (a
    new owner), or the producer failed for good. The worker must stop."""


class Record(NamedTuple):  # (tuples: a transaction makes thousands; a frozen dataclass costs ~4x to build)
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None  # None: by key, with Kafka's default partitioner


class Written(NamedTuple):
    """Where a committed record went."""

    topic: str
    partition: int
    offset: int


_new_written = tuple.__new__  # Written from a (topic, partition, offset) tuple without the Python-level __new__


async def send_batches(producer: Any, topic: str, partition: int,
                       messages: list[tuple[bytes | None, bytes | None]]) -> list[tuple[asyncio.Future, int]]:
    """Send `messages` (key, value) to one topic-partition, in order, as record batches (a new one whenever one is
    full): aiokafka's `send()` costs tens of microseconds of Python per message, a batch's `append` a fraction of
    that. Returns each batch's future (its metadata's offset is that of its first record) and record count."""
    sent = []
    batch, count = producer.create_batch(), 0
    for key, value in messages:
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
            sent.append((await producer.send_batch(batch, topic, partition=partition), count))
            batch, count = producer.create_batch(), 0
            batch.append(key=key, value=value, timestamp=None)  # (an empty batch takes any record)
        count += 1
    sent.append((await producer.send_batch(batch, topic, partition=partition), count))
    return sent


class PartitionWriter:
    def __init__(self, settings: Settings, partition: int):
        self.partition = partition
        self.transactional_id = f"{settings.app_id}-orders-{partition}"
        self.group_id = settings.app_id
        self.settings = settings
        self.producer = self._new_producer()
        self.ready = asyncio.Event()
        self.closed = False

    def _new_producer(self) -> Any:
        return kafka.producer(
            self.settings, client_id=f"{self.settings.app_id}-writer-{self.partition}",
            transactional_id=self.transactional_id, transaction_timeout_ms=TRANSACTION_TIMEOUT_MS, acks="all",
            enable_idempotence=True, linger_ms=5, max_batch_size=262144, compression_type=_compression())

    async def start(self) -> None:
        """Register the transactional id (fencing earlier producers with it); retried while the broker is away."""
        delay = RETRY_FIRST_S
        while True:
            try:
                await self.producer.start()
                break
            except Exception as exc:
                if _fenced(exc) or self.closed:
                    raise Fenced(f"{self.transactional_id}: {type(exc).__name__}: {exc}") from exc
                log.warning("cannot start the partition's transactional producer yet; retrying",
                            extra={"partition": self.partition, "error": f"{type(exc).__name__}: {exc}",
                                   "retry_in_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MOST_S)
        self.ready.set()

    async def commit(self, records: list[Record], offsets: dict[Any, int]) -> list[Written]:
        """Send `records` and commit `offsets` (TopicPartition -> next offset to read) in one transaction; returns
        the records' metadata (offsets) in order. Retries until it commits; raises Fenced."""
        await self.ready.wait()
        delay = RETRY_FIRST_S
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._transaction(records, offsets)
            except Fenced:
                raise
            except Exception as exc:
                if self._fenced(exc):
                    raise Fenced(f"{self.transactional_id}: {type(exc).__name__}: {exc}") from exc
                if self.producer._txn_manager.is_fatal_error():
                    # The producer is broken for good but nothing says another one took the transactional id:
                    # aiokafka ends its sender on a connection lost while it looks for a coordinator (a broker
                    # killed at that moment). A new producer with the id fences this one and aborts its open
                    # transaction; the batch is then committed by it.
                    log.warning("the partition's transactional producer failed; starting a new one",
                                extra={"partition": self.partition, "attempt": attempt,
                                       "error": f"{type(exc).__name__}: {exc}"})
                    await self._replace_producer()
                    continue
                log.warning("a transaction failed; aborting it and trying again",
                            extra={"partition": self.partition, "attempt": attempt, "retry_in_s": delay,
                                   "error": f"{type(exc).__name__}: {exc}"})
                await self._abort()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MOST_S)

    async def _transaction(self, records: list[Record], offsets: dict[Any, int]) -> list[Written]:
        """One transaction. The records go out as record batches per topic-partition (`send_batches`), in their
        order within each partition, which is the only order Kafka keeps. A record without a partition goes where
        `send()` would put it: the producer's partitioner on its key."""
        p = self.producer
        await p.begin_transaction()
        groups: dict[tuple[str, int], list[int]] = {}
        by_key: dict[tuple[str, bytes | None], int] = {}
        partitions: dict[str, tuple[list[int], list[int]]] = {}  # topic -> (every partition, the available ones)
        partitioner = p._partitioner  # (the producer's own: the default unless configured otherwise)
        for i, r in enumerate(records):
            part = r.partition
            if part is None:
                part = by_key.get((r.topic, r.key))
                if part is None:
                    if r.topic not in partitions:
                        partitions[r.topic] = (sorted(await p.partitions_for(r.topic)),
                                               sorted(p.client.cluster.available_partitions_for_topic(r.topic)))
                    part = by_key[r.topic, r.key] = partitioner(r.key, *partitions[r.topic])
            groups.setdefault((r.topic, part), []).append(i)
        sent = [(indices, await send_batches(p, topic, part, [(records[i].key, records[i].value) for i in indices]))
                for (topic, part), indices in groups.items()]
        if offsets:
            await p.send_offsets_to_transaction(offsets, self.group_id)
        await p.commit_transaction()
        written: list[Written] = [None] * len(records)  # type: ignore[list-item]
        for indices, batches in sent:
            first = 0
            for future, count in batches:
                meta = future.result()
                topic, part, base = meta.topic, meta.partition, meta.offset
                for position, i in enumerate(indices[first:first + count]):
                    written[i] = _new_written(Written, (topic, part, base + position))
                first += count
        return written

    def _fenced(self, exc: BaseException) -> bool:
        """Another producer took the transactional id (or the id may not be used): `exc`, an exception it was raised
        from, or what ended the producer's sender says so. Any other fatal state of the producer is a broken
        producer, which a new one replaces."""
        return _fenced_chain(exc) or _fenced_chain(_sender_error(self.producer))

    async def _replace_producer(self) -> None:
        old, self.producer = self.producer, self._new_producer()
        self.ready.clear()
        try:
            await old.stop()
        except Exception:  # noqa: BLE001 - a broken producer may fail to close; the new one fences it anyway
            log.debug("closing a failed transactional producer failed", exc_info=True)
        await self.start()  # (retried while the broker is away; Fenced when another producer took the id)

    async def _abort(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            try:
                if self.producer._txn_manager.state in _ABORTABLE:
                    await self.producer.abort_transaction()
                return
            except Exception as exc:
                if self._fenced(exc):
                    raise Fenced(f"{self.transactional_id}: {type(exc).__name__}: {exc}") from exc
                if self.producer._txn_manager.is_fatal_error():
                    return  # broken, not fenced: the next attempt of `commit` replaces the producer
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MOST_S)

    async def close(self) -> None:
        self.closed = True
        try:
            await self.producer.stop()
        except Exception:  # noqa: BLE001 - closing a broken producer must not fail a rebalance
            log.debug("closing a transactional producer failed", exc_info=True)


class Writers:
    """The partition writers of the partitions this worker owns."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.by_partition: dict[int, PartitionWriter] = {}
        self._starting: dict[int, asyncio.Task] = {}

    def assign(self, partitions: Iterable[int]) -> None:
        """Start writers for newly owned partitions (in the background: `get` waits for them)."""
        for p in partitions:
            if p not in self.by_partition:
                writer = self.by_partition[p] = PartitionWriter(self.settings, p)
                self._starting[p] = asyncio.ensure_future(writer.start())

    async def revoke(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            writer = self.by_partition.pop(p, None)
            task = self._starting.pop(p, None)
            if task is not None and not task.done():
                task.cancel()
            if writer is not None:
                await writer.close()

    async def get(self, partition: int) -> PartitionWriter | None:
        """The started writer of an owned partition (None when not owned); raises Fenced when it cannot start."""
        writer = self.by_partition.get(partition)
        task = self._starting.get(partition)
        if task is not None:
            await asyncio.shield(task)  # re-raises Fenced
        return writer

    async def close(self) -> None:
        await self.revoke(list(self.by_partition))


def _abortable() -> tuple[Any, ...]:
    from aiokafka.producer.transaction_manager import TransactionState

    return (TransactionState.IN_TRANSACTION, TransactionState.ABORTABLE_ERROR)


_ABORTABLE = _abortable()


def _fenced(exc: BaseException) -> bool:
    from aiokafka.errors import (
        InvalidProducerEpoch,
        ProducerFenced,
        TransactionalIdAuthorizationFailed,
        UnsupportedVersionError,
    )

    return isinstance(exc, ProducerFenced | InvalidProducerEpoch | TransactionalIdAuthorizationFailed
                      | UnsupportedVersionError)


def _sender_error(producer: Any) -> BaseException | None:
    """What ended the producer's sender (aiokafka puts the producer in its fatal state with it), if it ended."""
    task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    if task is None or not task.done() or task.cancelled():
        return None
    return task.exception()


def _fenced_chain(exc: BaseException | None) -> bool:
    """`exc`, or an exception it was raised from, says another producer took the transactional id (or the id may
    not be used)."""
    seen = 0
    while exc is not None and seen < 10:
        if _fenced(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _compression() -> str | None:
    try:
        import lz4  # noqa: F401
    except ImportError:
        return None
    return "lz4"
