"""The order table's value, b"<partition> <offset of last applied event> <next deadline or -1>|" + the core's state
(the header is read without decoding the state: recovery, redelivery checks and the query API need only it), and
the local store's writes of committed values.
"""

from __future__ import annotations

from typing import Any

from ..core.engine import OrderState, dump_state


def encode_value(partition: int, offset: int, deadline: int | None, state: OrderState) -> bytes:
    return b"%d %d %d|" % (partition, offset, -1 if deadline is None else deadline) + dump_state(state)


def decode_header(value: bytes) -> tuple[int, int, int | None, bytes]:
    head, _, body = value.partition(b"|")
    p, off, dl = head.split()
    deadline = int(dl)
    return int(p), int(off), (None if deadline < 0 else deadline), body


class _Committed:
    """A committed changelog record, shaped as the changelog event a Faust store applies during recovery (the event
    is its own `message`: the stores read key and value from one, partition, offset and tp from the other)."""

    __slots__ = ("tp", "topic", "partition", "offset", "key", "value")

    def __init__(self, tp: Any, offset: int, key: bytes, value: bytes | None):
        self.tp, self.topic, self.partition, self.offset = tp, tp.topic, tp.partition, offset
        self.key, self.value = key, value

    @property
    def message(self) -> _Committed:
        return self


def store_committed(store: Any, tp: Any, records: list[tuple[bytes, bytes | None, int]]) -> None:
    """Write committed changelog records (key, value or None to delete, changelog offset) of partition `tp` to the
    local store, as table recovery would (`apply_changelog_batch`: RocksDB also records the offset applied, so
    recovery after a restart reads on from there)."""
    if records:
        store.apply_changelog_batch([_Committed(tp, off, k, v) for k, v, off in records], _same, _same)


def _same(x: Any) -> Any:
    return x
