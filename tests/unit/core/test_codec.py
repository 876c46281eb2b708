"""The order-state codec: values written by earlier versions (formats 1 and 2, byte for byte as they wrote them)
are read into the same runs the engine holds in memory, and written back unchanged."""

from __future__ import annotations

import pytest

from monitor.core.engine import Engine, dump_state, load_state
from monitor.core.runs import Run

from ..helpers import Recorder, T, ev, policies

OFFICE = {"calendars": {"office": {"timezone": "Europe/Berlin", "hours": {"sat": ["08:00-18:00"]}}}}
PLAIN = {"process": "p", "early_warning": 0.5, "order": {"commitment": "3h", "tolerance": "4h"}, "calendar": "office",
         "nodes": {"n": {"commitment": "1h", "tolerance": "2h", "owner": "desk"},
                   "m": {"commitment": "1h", "tolerance": "2h"}}}
RICH = {"process": "p", "early_warning": [0.75, 0.5], "order": {"commitment": "4h", "tolerance": "5h"},
        "statuses": {"New": "n", "Wait": {"pause": "n"}, "Done": {"end": "completed"}},
        "nodes": {"n": {"commitment": "1h", "tolerance": "2h"}, "m": {"commitment": "10m", "tolerance": "10m"}}}

# written by the codec before it was made cheaper (format 1: pauses, a paused run, attrs, owner, a calendar;
# format 2: graded early warnings and a current status run)
FORMAT_1 = (b'[1,"o1","p",1795252200000000,"\\u0000a1\\u0000a2\\u0000a3\\u0000a4\\u0000a5\\u0000",0,{"n":1,"__order__":1,'
            b'"m":1},[["n",1,1795248000000000,"default",{"k":"v","n":2},1,3600000000,7200000000,1800000000,"desk",'
            b'"office",[1795250400000000,1795251600000000],null,1,1795252800000000],["__order__",1,1795248000000000,'
            b'"default",{"k":"v","n":2},1,10800000000,14400000000,5400000000,null,"office",[],null,0,'
            b'1795253400000000],["m",1,1795251600000000,"default",null,1,3600000000,7200000000,1800000000,null,'
            b'"office",[],1795252200000000,0,null]]]')
FORMAT_2 = (b'[2,"o1","p",1795249200000000,"\\u0000b1\\u0000b2\\u0000b3\\u0000",0,{"n":1,"__order__":1,"m":1},[["n",1,'
            b'1795248000000000,"gold",null,1,3600000000,7200000000,[[0.5,1800000000],[0.75,2700000000]],null,null,[],'
            b'1795249200000000,-1,null],["__order__",1,1795248000000000,"gold",null,1,14400000000,18000000000,'
            b'[[0.5,7200000000],[0.75,10800000000]],null,null,[],null,-1,1795255200000000],["m",1,1795248000000000,'
            b'"default",null,1,600000000,600000000,[[0.5,300000000],[0.75,450000000]],null,null,[],null,3,null]],"n"]')


def plain_events():
    return [ev("node_started", "2026-11-21T08:00:00Z", event_id="a1", attrs={"k": "v", "n": 2}),
            ev("node_paused", "2026-11-21T08:40:00Z", event_id="a2"),
            ev("node_resumed", "2026-11-21T09:00:00Z", event_id="a3"),
            ev("node_started", "2026-11-21T09:00:00Z", node="m", event_id="a4"),
            ev("node_paused", "2026-11-21T09:10:00Z", node="m", event_id="a5")]


def rich_events():
    return [ev("status_changed", "2026-11-21T08:00:00Z", node=None, status="New", event_id="b1", segment="gold"),
            ev("node_started", "2026-11-21T08:00:00Z", node="m", event_id="b2"),
            ev("status_changed", "2026-11-21T08:20:00Z", node=None, status="Wait", event_id="b3")]


CASES = [(FORMAT_1, PLAIN, OFFICE, plain_events), (FORMAT_2, RICH, None, rich_events)]


def in_memory(doc, calendars, events):
    engine, state = Engine(policies(doc, calendars=calendars)), None
    for e in events():
        state, rejection = engine.apply(state, e, Recorder())
        assert rejection is None
    return engine, state


@pytest.mark.parametrize(("data", "doc", "calendars", "events"), CASES)
def test_earlier_formats_are_read_into_the_runs_the_engine_holds_and_written_back_unchanged(data, doc, calendars,
                                                                                            events):
    engine, state = in_memory(doc, calendars, events)
    assert dump_state(state) == data  # the engine still writes these formats, byte for byte
    loaded = load_state(data, engine)
    for slot in ("order_id", "process", "last_at", "event_ids", "closed", "counts", "status_node"):
        assert getattr(loaded, slot) == getattr(state, slot), slot
    assert list(loaded.runs) == list(state.runs)
    for node, run in state.runs.items():
        again = loaded.runs[node]
        for slot in Run.__slots__:
            assert getattr(again, slot) == getattr(run, slot), (node, slot)
        assert again.calendar is engine.calendar(run.calendar_name)
    assert dump_state(loaded) == data


@pytest.mark.parametrize(("data", "doc", "calendars", "events"), CASES)
def test_a_loaded_state_goes_on_exactly_as_the_one_kept_in_memory(data, doc, calendars, events):
    engine, state = in_memory(doc, calendars, events)
    loaded = load_state(data, engine)
    kept, again = Recorder(), Recorder()
    for st, rec in ((state, kept), (loaded, again)):
        engine.advance(st, T("2026-11-28T18:00:00Z"), rec)
        st, rejection = engine.apply(st, ev("order_completed", "2026-11-28T18:00:00Z", node=None, event_id="z"), rec)
        assert rejection is None
    assert again.warnings == kept.warnings and again.outcomes == kept.outcomes
    assert again.warnings and again.outcomes


@pytest.mark.parametrize("data", [b'[3,"o1","p",null,"\\u0000",0,{},[]]', b'[99, "o1"]', b'[1,"o1","p",null,"",0,{},[],"n"]'])
def test_an_unknown_format_is_refused_not_misread(data):
    engine = Engine(policies(PLAIN, calendars=OFFICE))
    with pytest.raises(ValueError):
        load_state(data, engine)
