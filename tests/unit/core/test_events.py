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
