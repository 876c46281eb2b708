"""Workflow events (CONTRACTS.md section 2): parsing and the `malformed` check.

The other reasons an event cannot be applied depend on the order's state and the policies; the engine
checks them, in the contract's order, after this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .instants import InstantError, parse_instant
from .vocabulary import DEFAULT_SEGMENT, EVENT_TYPES, NODE_TYPES, STATUS_CHANGED

_NODE, _STATUS, _ORDER = "node", "status", "order"  # what else an event type needs: a node, a status, nothing
_KINDS = {t: _NODE if t in NODE_TYPES else _STATUS if t == STATUS_CHANGED else _ORDER for t in EVENT_TYPES}

# How deeply `attrs` may nest objects and arrays (`attrs` itself is level 1). The monitor stores and emits attrs
# inside its own JSON (order state, warnings, outcomes), and orjson writes at most 254 levels: anything deeper
# than this would be accepted here and fail later, so it is `malformed` here, before it touches any state.
MAX_ATTRS_DEPTH = 32


class Malformed(ValueError):
    """The event is not a valid workflow event; the message says why."""


@dataclass(slots=True, eq=False, repr=False)
class Event:
    event_id: str
    order_id: str
    process: str
    type: str
    node: str | None
    at: int
    segment: str = DEFAULT_SEGMENT
    attrs: dict[str, Any] | None = None
    status: str | None = None  # the source's status, on `status_changed` only

    def __repr__(self) -> str:
        return f"Event({self.type} {self.order_id}/{self.node or self.status} at={self.at} id={self.event_id})"


def _required_text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if type(value) is not str:
        if value is None:
            raise Malformed(f"missing field {key!r}")
        raise Malformed(f"field {key!r} must be a string, got {type(value).__name__}")
    if not value:
        raise Malformed(f"field {key!r} is empty")
    return value


def event_from_object(obj: Any) -> Event:
    """A decoded JSON value (or CSV row) -> Event, or Malformed with the reason."""
    if type(obj) is not dict:
        raise Malformed(f"an event must be a JSON object, got {type(obj).__name__}")
    # fast path (every event of a clean log, once each: keep it lean): the required texts are present, non-empty
    # strings; otherwise the checks in field order find the first problem for the message
    try:
        event_id, order_id, process, etype, at_text = obj["event_id"], obj["order_id"], obj["process"], obj["type"], \
            obj["at"]
    except KeyError:
        event_id = None
    if not (type(event_id) is str and event_id and type(order_id) is str and order_id and type(process) is str
            and process and type(etype) is str and etype and type(at_text) is str and at_text):
        for key in ("event_id", "order_id", "process", "type", "at"):
            _required_text(obj, key)
    kind = _KINDS.get(etype)
    if kind is None:
        raise Malformed(f"unknown type {etype!r}")
    get = obj.get
    node = status = None
    if kind is _NODE:
        node = get("node")
        if type(node) is not str or not node:
            _required_text(obj, "node")
    elif kind is _STATUS:  # its `node`, if any, is ignored
        status = _required_text(obj, "status")
    try:
        at = parse_instant(at_text)
    except InstantError as exc:
        raise Malformed(f"field 'at': {exc}") from None
    segment = get("segment")
    if segment is None or segment == "":
        segment = DEFAULT_SEGMENT
    elif type(segment) is not str:
        raise Malformed(f"field 'segment' must be a string, got {type(segment).__name__}")
    attrs = get("attrs")
    if attrs is not None:
        if type(attrs) is not dict:
            raise Malformed(f"field 'attrs' must be an object, got {type(attrs).__name__}")
        for value in attrs.values():  # flat attrs (the common case) need no walk
            if type(value) is dict or type(value) is list:
                if _deeper_than(attrs, MAX_ATTRS_DEPTH):
                    raise Malformed(f"field 'attrs' nests objects and arrays more than {MAX_ATTRS_DEPTH} levels "
                                    "deep")
                break
    if "\x00" in event_id:
        raise Malformed("field 'event_id' contains a NUL character")
    return Event(event_id, order_id, process, etype, node, at, segment, attrs or None, status)


def _deeper_than(value: dict[str, Any] | list[Any], limit: int) -> bool:
    """Whether `value` (level 1) holds objects or arrays below level `limit`. One look at each value; flat attrs
    (the common case) cost a pass over their values and nothing more."""
    pending = [(value, 1)]
    while pending:
        container, level = pending.pop()
        for item in container.values() if type(container) is dict else container:
            if type(item) is dict or type(item) is list:
                if level >= limit:
                    return True
                pending.append((item, level + 1))
    return False


def decode_event(raw: bytes | str) -> Event:
    """JSON bytes -> Event, or Malformed."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"not JSON: {exc}") from None
    return event_from_object(obj)
