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


def _outcome(decode, raw):
    try:
        e = decode(raw)
    except Malformed as exc:
        return ("malformed", str(exc))
    return tuple(getattr(e, f) for f in ("event_id", "order_id", "process", "type", "node", "at", "segment", "attrs",
                                         "status"))


def test_the_fast_decoding_gives_the_full_path_answer_for_any_line():
    # decode_event reads a well-formed event with msgspec and hands every other line to orjson + event_from_object:
    # for each line below (valid events and mutations of them) both must give the same event or the same reason
    import random

    from monitor.core.events import _decode_full
    rng = random.Random(5)
    values = ["", "x", "o:1", "a\u0000b", "\u00e9", None, 0, 7, -1.5, 1e300, True, [], ["a"], {}, {"k": "v"},
              "node_started", "node_completed", "order_completed", "status_changed", "node_paused", "node_exploded",
              "2026-11-21T08:00:00Z", "2026-11-21T08:00:00.125Z", "2026-11-21T08:00:61Z", "2026-11-21T08:00:00",
              "1969-12-31T23:59:59Z", "2026-11-21T09:00:00+01:00", "default", "gold"]
    attrs = [None, {}, {"a": 1}, {"a": {"b": [1, {"c": 2}]}}, [1], "s", 3, _nested(40), _nested(30), _nested(33), _nested(32), {"n": 123456789012345678901234567890}]
    fields = ["event_id", "order_id", "process", "type", "node", "at", "segment", "status", "attrs", "extra"]
    lines = []
    for _ in range(4_000):
        obj = {"event_id": f"e{rng.randrange(9)}", "order_id": "o1", "process": "p",
               "type": rng.choice(["node_started", "node_completed", "order_cancelled", "status_changed"]),
               "node": "n", "at": "2026-11-21T08:00:00.5Z"}
        for _ in range(rng.randrange(4)):
            key = rng.choice(fields)
            if rng.random() < 0.2:
                obj.pop(key, None)
            else:
                obj[key] = rng.choice(attrs) if key == "attrs" else rng.choice(values)
        lines.append(json.dumps(obj).encode())
    lines += [b"", b" ", b"null", b"[]", b"{}", b"\xef\xbb\xbf" + lines[0], lines[0] + b"x", lines[0][:-1],
              b'{"event_id":"a","event_id":"b","order_id":"o","process":"p","type":"order_completed",'
              b'"at":"2026-11-21T08:00:00Z"}',
              b'{"event_id":"\\ud800","order_id":"o","process":"p","type":"order_completed","at":"2026-11-21T08:00:00Z"}',
              b'{"event_id":"a","order_id":"o","process":"p","type":"order_completed","at":"2026-11-21T08:00:00Z",'
              b'"attrs":{"k":1e400}}',
              b'{"event_id":"a","order_id":"o","process":"p","type":"order_completed","at":"2026-11-21T08:00:00Z",'
              b'"attrs":{"k":"\\udc00"}}',
              b'{"event_id":"a","order_id":"o","process":"p","type":"order_completed","at":"2026-11-21T08:00:00Z",'
              b'"attrs":{"k":1}, "extra":1e400}']
    seen = set()
    for raw in lines:
        expected = _outcome(_decode_full, raw)
        assert _outcome(decode_event, raw) == expected, raw
        seen.add(expected[0] == "malformed")
    assert seen == {True, False}  # both kinds of line were tried


def test_clean_events_take_the_fast_path(monkeypatch):
    # the full path is the fallback for lines with a problem: a clean event, with or without attrs, never needs it
    from monitor.core import events

    def refuse(raw):
        raise AssertionError(f"full path taken for {raw!r}")

    monkeypatch.setattr(events, "_decode_full", refuse)
    for extra in ({}, {"attrs": {"org:resource": "10045", "n": 3}}, {"attrs": None}, {"segment": "gold"},
                  {"type": "status_changed", "status": "waiting", "node": None}, {"type": "order_completed"}):
        assert decode_event(orjson.dumps({**BASE, **extra})).order_id == "o1"
