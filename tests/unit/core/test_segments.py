"""Segments chosen by attributes (CONTRACTS section 12): `match:` on `segment` and `attrs.NAME`, first match in
file order, a named segment first; and the matrix `slamon policy check` prints."""

import pytest

from monitor.core.engine import Engine
from monitor.core.policies import PolicyError, build_policy_set
from monitor.core.segments import matrix_keys, matrix_rows, matrix_size

from ..helpers import Recorder, T, ev, policies

NODES = {"triage": {"commitment": "1h", "tolerance": "2h"}}
TICKETS = {
    "process": "p", "order": {"commitment": "8h", "tolerance": "9h"}, "nodes": NODES,
    "segments": {  # file order matters: p1_outage is tried before vip
        "p1_outage": {"match": {"attrs.priority": "P1", "attrs.category": ["outage", "security"]},
                      "triage": {"commitment": "15m", "tolerance": "30m"}},
        "vip": {"match": {"segment": ["gold", "platinum"]}, "triage": {"commitment": "20m"}},
        "numbers": {"match": {"attrs.level": "2", "attrs.flag": "true"}, "triage": {"commitment": "25m"}},
        "enterprise": {"triage": {"commitment": "30m"}},
    },
}


def segment_of(segment=None, attrs=None, doc=TICKETS):
    extra = {}
    if segment is not None:
        extra["segment"] = segment
    if attrs is not None:
        extra["attrs"] = attrs
    engine, rec = Engine(policies(doc)), Recorder()
    state, rej = engine.apply(None, ev("node_started", "2026-11-21T08:00:00Z", node="triage", **extra), rec)
    assert rej is None
    return state.runs["triage"].segment, state.runs["triage"].commitment // 60_000_000, state


@pytest.mark.parametrize(("segment", "attrs", "expected"), [
    (None, {"priority": "P1", "category": "outage"}, ("p1_outage", 15)),
    (None, {"priority": "P1", "category": "security", "x": 1}, ("p1_outage", 15)),
    (None, {"priority": "P1"}, ("default", 60)),  # category missing: the condition fails, no match
    (None, {"priority": "P1", "category": None}, ("default", 60)),  # null is absent
    (None, {"priority": "p1", "category": "outage"}, ("default", 60)),  # values compare exactly
    (None, {"priority": "P2", "category": "outage"}, ("default", 60)),
    ("gold", {"priority": "P1", "category": "outage"}, ("p1_outage", 15)),  # first match in file order
    ("gold", {"priority": "P2"}, ("vip", 20)),
    ("platinum", None, ("vip", 20)),
    ("silver", None, ("silver", 60)),  # no match: the segment as given (limits of the node, label default)
    ("enterprise", {"priority": "P1", "category": "outage"}, ("enterprise", 30)),  # a named segment wins
    ("vip", None, ("vip", 20)),  # named, though it has match: too
    (None, {"level": 2, "flag": True}, ("numbers", 25)),  # JSON text: 2 matches "2", true matches "true"
    (None, {"level": "2", "flag": "true"}, ("numbers", 25)),
    (None, {"level": 2.0, "flag": True}, ("default", 60)),  # the JSON text of 2.0 is 2.0, not 2
    (None, {"level": [2], "flag": True}, ("default", 60)),
])
def test_a_runs_segment_by_name_then_first_match_then_as_given(segment, attrs, expected):
    got, commitment, _ = segment_of(segment, attrs)
    assert (got, commitment) == expected


def test_an_event_without_segment_has_segment_default_for_match():
    doc = {**TICKETS, "segments": {"plain": {"match": {"segment": "default"}, "triage": {"commitment": "5m"}}}}
    assert segment_of(None, None, doc)[:2] == ("plain", 5)
    assert segment_of("", None, doc)[:2] == ("plain", 5)  # an empty segment is no segment
    assert segment_of("other", None, doc)[:2] == ("other", 60)


def test_the_order_level_run_takes_the_segment_its_first_run_got():
    _, _, state = segment_of(None, {"priority": "P1", "category": "outage"})
    assert state.runs["__order__"].segment == "p1_outage"
    ps = policies(TICKETS)
    assert ps.segment_label("p", "p1_outage") == "p1_outage" and ps.segment_label("p", "silver") == "default"


def test_a_runs_segment_is_decided_at_its_start_and_kept():
    engine, rec = Engine(policies(TICKETS)), Recorder()
    state, _ = engine.apply(None, ev("node_started", "2026-11-21T08:00:00Z", node="triage",
                                     attrs={"priority": "P1", "category": "outage"}), rec)
    engine.advance(state, T("2026-11-21T09:00:00Z"), rec)
    assert {(w["segment"], w["commitment_s"]) for w in rec.warnings if w["node"] == "triage"} == {("p1_outage", 900.0)}
    assert rec.warnings[0]["attrs"] == {"priority": "P1", "category": "outage"}


def problems(segments):
    with pytest.raises(PolicyError) as err:
        build_policy_set([("p.yaml", {**TICKETS, "segments": segments})])
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(("match", "where", "what"), [
    ({}, "segments.s.match", "non-empty mapping"),
    ("P1", "segments.s.match", "non-empty mapping"),
    ({"priority": "P1"}, "segments.s.match.priority", "on `segment` or on `attrs.NAME`"),
    ({"attrs.": "P1"}, "segments.s.match.attrs.", "on `segment` or on `attrs.NAME`"),
    ({"attrs.level": 2}, "segments.s.match.attrs.level", "quote it: '2'"),
    ({"attrs.level": ["a", None]}, "segments.s.match.attrs.level", "not a text"),
    ({"segment": []}, "segments.s.match.segment", "an empty list matches nothing"),
])
def test_bad_match_is_rejected_with_file_field_and_problem(match, where, what):
    found = problems({"s": {"match": match}})
    assert any(p.startswith(f"p.yaml: {where}: ") and what in p for p in found), found


def test_a_node_named_match_or_calendar_keeps_its_overrides():
    doc = {"process": "p", "nodes": {"match": {"commitment": "1h", "tolerance": "2h"},
                                     "calendar": {"commitment": "1h", "tolerance": "2h"}},
           "segments": {"gold": {"match": {"commitment": "10m"}, "calendar": {"tolerance": "3h"}},
                        "silver": {"match": {"attrs.k": "v"}}}}
    p = build_policy_set([("p.yaml", doc)])[0].get("p")
    assert p.limits("match", "gold").commitment == 600_000_000 and p.limits("calendar", "gold").tolerance == 3 * 3600_000_000
    assert [name for name, _ in p.matchers] == ["silver"]


def test_the_matrix_lists_every_combination_with_the_segment_it_falls_into():
    p = policies(TICKETS).get("p")
    keys = matrix_keys(p.matchers)
    assert keys == [("attrs.priority", ["P1"]), ("attrs.category", ["outage", "security"]),
                    ("segment", ["gold", "platinum"]), ("attrs.level", ["2"]), ("attrs.flag", ["true"])]
    rows = dict((tuple(combo), seg) for combo, seg in matrix_rows(p.matchers, p.segment_of))
    assert len(rows) == matrix_size(p.matchers) == 2 * 3 * 3 * 2 * 2
    assert rows[("P1", "outage", "gold", "2", "true")] == "p1_outage"  # first in file order
    assert rows[("*", "outage", "gold", "2", "true")] == "vip"
    assert rows[("*", "outage", "*", "2", "true")] == "numbers"
    assert rows[("*", "outage", "*", "2", "*")] == "(as given)"
    assert rows[("P1", "*", "*", "*", "*")] == "(as given)"
    assert list(matrix_rows(p.matchers, p.segment_of, limit=5)).__len__() == 5
