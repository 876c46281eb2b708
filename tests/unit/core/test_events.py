import json

import orjson
import pytest

from monitor.core.events import Malformed, decode_event, event_from_object

BASE = {"event_id": "e1", "order_id": "o1", "process": "p", "type": "node_started", "node": "n",
        "at": "2026-11-21T08:00:00+01:00"}


def test_event_parses_with_defaults():
    e = decode_event(orjson.dumps(BASE))
    assert (e.event_id, e.order_id, e.process, e.type, e.node, e.segment, e.attrs) == (
        "e1", "o1", "p", "node_started", "n", "default", None)
    e = event_from_object({**BASE, "type": "order_completed", "node": None, "segment": "gold", "attrs": {"k": 1}})
    assert e.node is None and e.segment == "gold" and e.attrs == {"k": 1}


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1,2]", b'"text"', orjson.dumps({k: v for k, v in BASE.items() if k != "event_id"}),
     orjson.dumps({**BASE, "type": "node_exploded"}), orjson.dumps({**BASE, "at": "2026-11-21T08:00:00"}),
     orjson.dumps({**BASE, "at": "tomorrow"}), orjson.dumps({**BASE, "node": None}),
     orjson.dumps({**BASE, "order_id": 17}), orjson.dumps({**BASE, "attrs": [1]}),
     orjson.dumps({**BASE, "segment": 5}), orjson.dumps({**BASE, "event_id": ""}), b"\xff\xfe"],
)
def test_malformed_events(raw):
    with pytest.raises(Malformed):
        decode_event(raw)


def test_an_at_outside_the_years_1970_to_9999_in_utc_is_malformed():
    # beyond 9999 it could never be written back (OverflowError later); before 1970 its deadlines were negative
    # and read as "none" by the live monitor, so its crossings were never announced
    for at in ["9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59.999999-00:01", "1969-12-31T23:59:59.999999Z",
               "1970-01-01T00:30:00+01:00", "0001-01-01T00:00:00+01:00", "0000-01-01T00:00:00Z"]:
        with pytest.raises(Malformed, match="field 'at'"):
            decode_event(orjson.dumps({**BASE, "at": at}))
    for at in ["1970-01-01T00:00:00Z", "1970-01-01T01:00:00+01:00", "9999-12-31T23:59:59.999999Z",
               "9999-12-31T18:59:59-05:00"]:  # the first and last supported instants
        assert decode_event(orjson.dumps({**BASE, "at": at})).type == "node_started"


def _nested(levels: int) -> dict:
    """attrs nesting objects and arrays `levels` deep (attrs itself is level 1)."""
    value: object = "leaf"
    for i in range(levels - 1):
        value = [value] if i % 2 else {"k": value}
    return {"a": value}


def test_attrs_nested_beyond_the_limit_are_malformed_before_they_reach_any_state():
    raw = json.dumps({**BASE, "attrs": _nested(300)})  # orjson reads it, but refuses to write > 254 levels
    with pytest.raises(Malformed, match="32 levels"):
        decode_event(raw)
    with pytest.raises(Malformed, match="32 levels"):
        decode_event(orjson.dumps({**BASE, "attrs": _nested(33)}))
    e = decode_event(orjson.dumps({**BASE, "attrs": _nested(32)}))
    assert orjson.loads(orjson.dumps(e.attrs)) == _nested(32)
    wide = {"attrs": {f"k{i}": [1, {"x": [2]}] for i in range(100)}}
    assert decode_event(orjson.dumps({**BASE, **wide})).attrs == wide["attrs"]


def test_an_event_id_with_a_nul_character_is_malformed():
    # applied event ids are kept NUL-separated in the order's state: "a\x00b" would read as "a" and "b"
    with pytest.raises(Malformed, match="NUL"):
        decode_event(orjson.dumps({**BASE, "event_id": "a\x00b"}))
