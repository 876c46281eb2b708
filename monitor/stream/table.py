"""The order table's value: b"<partition> <offset of last applied event> <next deadline or -1>|" + the core's state.

The header is read without decoding the state: recovery, redelivery checks and the query API need only it.
"""

from __future__ import annotations

from ..core.engine import OrderState, dump_state


def encode_value(partition: int, offset: int, deadline: int | None, state: OrderState) -> bytes:
    return b"%d %d %d|" % (partition, offset, -1 if deadline is None else deadline) + dump_state(state)


def decode_header(value: bytes) -> tuple[int, int, int | None, bytes]:
    head, _, body = value.partition(b"|")
    p, off, dl = head.split()
    deadline = int(dl)
    return int(p), int(off), (None if deadline < 0 else deadline), body
