"""Workflow events (CONTRACTS.md section 2): parsing and the `malformed` check.

The other reasons an event cannot be applied depend on the order's state and the policies; the engine
checks them, in the contract's order, after this.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
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


class Event(msgspec.Struct, eq=False, gc=False):
    """A well-formed workflow event (a msgspec Struct: built in C, a third of a dataclass's cost, and untracked by
    the cyclic collector; it holds no cycles)."""

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


_Text = Annotated[str, msgspec.Meta(min_length=1)]


class _Wire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An event as the fast path of `decode_event` reads it: the fields of the contract and no other, the required
    texts present and non-empty, `attrs` left as raw JSON for orjson (which the rest of the monitor writes it with)."""

    event_id: _Text
    order_id: _Text
    process: _Text
    type: _Text
    at: _Text
    node: str | None = None
    segment: str | None = None
    attrs: msgspec.Raw = msgspec.Raw(b"")
    status: str | None = None


_decode_wire = msgspec.json.Decoder(_Wire).decode
_WIRE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


def decode_event(raw: bytes | str) -> Event:
    """JSON bytes -> Event, or Malformed.

    Two paths, one answer: a well-formed event with only the contract's fields is read by msgspec into `_Wire` (in C,
    twice as fast as a dict and checks in Python) and checked for what remains; anything else (any problem, an
    unknown field, attrs that orjson does not take) goes through `event_from_object(orjson.loads(raw))`, which finds
    the first problem for the message. So the fast path only ever accepts what the full path accepts, and builds the
    same Event."""
    try:
        wire = _decode_wire(raw)
    except _WIRE_ERRORS:
        return _decode_full(raw)
    etype = wire.type
    kind = _KINDS.get(etype)
    node = status = None
    if kind is _NODE:
        node = wire.node
        if not node:
            return _decode_full(raw)
    elif kind is _STATUS:
        status = wire.status
        if not status:
            return _decode_full(raw)
    elif kind is None:
        return _decode_full(raw)
    event_id = wire.event_id
    attrs = wire.attrs
    if attrs:
        try:
            attrs = orjson.loads(bytes(attrs))  # (orjson takes bytes, not msgspec.Raw)
        except orjson.JSONDecodeError:
            return _decode_full(raw)
        if attrs is not None:
            if type(attrs) is not dict:
                return _decode_full(raw)
            for value in attrs.values():  # as event_from_object: flat attrs need no walk
                if type(value) is dict or type(value) is list:
                    if _deeper_than(attrs, MAX_ATTRS_DEPTH):
                        return _decode_full(raw)
                    break
    if "\x00" in event_id:
        return _decode_full(raw)
    try:
        at = parse_instant(wire.at)
    except InstantError:
        return _decode_full(raw)
    return Event(event_id, wire.order_id, wire.process, etype, node, at, wire.segment or DEFAULT_SEGMENT,
                 attrs or None, status)


def _decode_full(raw: bytes | str) -> Event:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"not JSON: {exc}") from None
    return event_from_object(obj)
