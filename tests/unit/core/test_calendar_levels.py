"""Calendars per node, per segment and per segment-and-node (CONTRACTS section 12): a run counts in the most
specific one; the order-level run in its segment's, else the process's."""

import pytest

from monitor.core.engine import Engine, dump_state, load_state
from monitor.core.policies import PolicyError, build_policy_set

from ..helpers import Recorder, T, ev, policies


def daily(*ranges, days=("mon", "tue", "wed", "thu", "fri", "sat", "sun")):
    return {"timezone": "UTC", "hours": {d: list(ranges) for d in days}}


# Each calendar opens at its own hour, so the instant a 30-minute commitment is used up tells which one counted.
CALENDARS = {"calendars": {"proc": daily("09:00-17:00", days=("mon", "tue", "wed", "thu", "fri")),
                           "node": daily("10:00-12:00"), "seg": daily("13:00-14:00"),
                           "segnode": daily("20:00-22:00")}}
LIMITS = {"commitment": "30m", "tolerance": "1h"}
DOC = {"process": "p", "calendar": "proc", "order": LIMITS,
       "nodes": {"a": LIMITS, "b": {**LIMITS, "calendar": "node"}},
       "segments": {"s": {"calendar": "seg"},
                    "t": {"b": {"calendar": "segnode"}},
                    "u": {"calendar": "seg", "b": {"calendar": "segnode", "commitment": "1h"}}}}
MONDAY = "2026-11-23T00:00:00Z"  # every calendar is closed at midnight


def breach(doc, node, segment, calendars=CALENDARS):
    engine, rec = Engine(policies(doc, calendars=calendars)), Recorder()
    extra = {"segment": segment} if segment else {}
    state, rej = engine.apply(None, ev("node_started", MONDAY, node=node, **extra), rec)
    assert rej is None
    engine.advance(state, T("2026-11-24T00:00:00Z"), rec)
    return {w["node"]: w["crossed_at"][11:16] for w in rec.warnings if w["kind"] == "commitment_breached"}


@pytest.mark.parametrize(("node", "segment", "at"), [
    ("a", None, "09:30"),  # the process's calendar
    ("b", None, "10:30"),  # the node's
    ("a", "s", "13:30"),  # the segment's
    ("b", "s", "13:30"),  # the segment's beats the node's
    ("b", "t", "20:30"),  # segment-and-node
    ("a", "t", "09:30"),  # t has no calendar of its own: the process's
    ("b", "u", "21:00"),  # segment-and-node beats the segment's (and its 1h commitment is kept)
    ("a", "gold", "09:30"),  # a segment the policy does not name
])
def test_a_run_counts_in_the_most_specific_calendar(node, segment, at):
    assert breach(DOC, node, segment)[node] == at


@pytest.mark.parametrize(("segment", "at"), [(None, "09:30"), ("s", "13:30"), ("t", "09:30"), ("u", "13:30")])
def test_the_order_level_run_counts_in_its_segments_calendar_else_the_processs(segment, at):
    assert breach(DOC, "b", segment)["__order__"] == at


def test_without_any_calendar_everything_is_24x7():
    doc = {"process": "p", "order": LIMITS, "nodes": {"a": LIMITS}}
    assert breach(doc, "a", None) == {"a": "00:30", "__order__": "00:30"}


def test_calendar_for_and_calendar_names_tell_the_same():
    p = policies(DOC, calendars=CALENDARS).get("p")
    assert [p.calendar_for(n, s) for n, s in [("a", "default"), ("b", "default"), ("b", "s"), ("b", "t"),
                                              ("__order__", "u"), ("__order__", "t")]] == [
        "proc", "node", "seg", "segnode", "seg", "proc"]
    assert p.calendar_names == ["node", "proc", "seg", "segnode"]


def test_a_run_keeps_its_calendar_through_the_bytes_and_a_policy_change():
    engine, rec = Engine(policies(DOC, calendars=CALENDARS)), Recorder()
    state, _ = engine.apply(None, ev("node_started", MONDAY, node="b", segment="t"), rec)
    engine.set_policies(policies({"process": "p", "nodes": {"b": LIMITS}}))  # no calendars any more
    state = load_state(dump_state(state), engine)
    engine.advance(state, T("2026-11-24T00:00:00Z"), rec)
    assert {w["node"]: w["crossed_at"][11:16] for w in rec.warnings if w["kind"] == "commitment_breached"} == {
        "b": "20:30", "__order__": "09:30"}


def problems(doc):
    with pytest.raises(PolicyError) as err:
        build_policy_set([("p.yaml", doc)], CALENDARS)
    return [str(p) for p in err.value.problems]


def test_an_unknown_calendar_is_rejected_at_every_level():
    doc = {**DOC, "nodes": {"a": {**LIMITS, "calendar": "mars"}, "b": LIMITS},
           "segments": {"s": {"calendar": "venus"}, "t": {"b": {"calendar": "pluto"}}}}
    assert problems(doc) == [
        "p.yaml: nodes.a.calendar: unknown calendar 'mars' (not in calendars.yaml)",
        "p.yaml: segments.s.calendar: unknown calendar 'venus' (not in calendars.yaml)",
        "p.yaml: segments.t.b.calendar: unknown calendar 'pluto' (not in calendars.yaml)"]


def test_the_order_has_no_calendar_of_its_own():
    _, warnings = build_policy_set([("p.yaml", {**DOC, "order": {**LIMITS, "calendar": "node"}})], CALENDARS)
    assert [str(w) for w in warnings] == ["p.yaml: order.calendar: unknown field, ignored"]
