"""Status mappings (CONTRACTS section 12 and its Precisions): statuses start runs, pause them and end the order."""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.engine import Engine, dump_state, load_state
from monitor.core.events import Event, Malformed, decode_event
from monitor.core.policies import PolicyError, build_policy_set
from monitor.core.vocabulary import INVALID_TRANSITION, OUT_OF_ORDER, UNKNOWN_NODE

from ..helpers import Recorder, T, ev, policies

DOC = {"process": "p", "order": {"commitment": "10h", "tolerance": "12h"},
       "nodes": {"triage": {"commitment": "1h", "tolerance": "2h"}, "resolution": {"commitment": "4h", "tolerance": "8h"},
                 "fix": {"commitment": "1h", "tolerance": "1h"}},
       "segments": {"p1": {"match": {"attrs.priority": "P1"}, "triage": {"commitment": "15m"}}},
       "statuses": {"New": "triage", "In Progress": "resolution", "Awaiting Customer": {"pause": "resolution"},
                    "Resolved": {"end": "completed"}, "Withdrawn": {"end": "cancelled"}, "Fixing": "fix"}}


def st_(status, at, **extra):
    return ev("status_changed", f"2026-11-21T{at}:00Z", node=None, status=status, **extra)


class Order:
    def __init__(self, doc=DOC):
        self.engine, self.rec, self.state, self.rejected = Engine(policies(doc)), Recorder(), None, []

    def __call__(self, *events):
        for e in events:
            self.state, rej = self.engine.apply(self.state, e, self.rec)
            self.rejected.append(rej.reason if rej else None)
        return self

    def outcomes(self):
        return [(o["node"], o["run"], o["state"], o["ended_at"][11:16], o["elapsed_s"] / 60) for o in self.rec.outcomes]

    def open(self):
        return {n: (r.number, r.paused_at is not None) for n, r in self.state.runs.items()}


def test_a_status_starts_a_run_and_the_next_status_completes_it_and_starts_its_own():
    o = Order()(st_("New", "08:00"), st_("In Progress", "08:40"))
    assert o.rejected == [None, None]
    assert o.outcomes() == [("triage", 1, "completed_normal", "08:40", 40)]
    assert o.open() == {"__order__": (1, False), "resolution": (1, False)}
    assert o.state.status_node == "resolution"
    assert o.rec.started == [("o1", "triage", 1), ("o1", "__order__", 1), ("o1", "resolution", 1)]


def test_a_status_returning_to_the_paused_node_resumes_the_run_not_a_new_one():
    o = Order()(st_("New", "08:00"), st_("In Progress", "09:00"), st_("Awaiting Customer", "10:00"),
                st_("In Progress", "15:00"), st_("Resolved", "16:00"))
    assert o.rejected == [None] * 5
    assert ("resolution", 1, "completed_normal", "16:00", 120) in o.outcomes()  # 1h before the pause + 1h after
    assert [r for r in o.rec.started if r[1] == "resolution"] == [("o1", "resolution", 1)]


def test_a_status_mapped_to_the_current_runs_node_changes_nothing():
    o = Order()(st_("New", "08:00"), st_("New", "08:30"))
    assert o.rejected == [None, None] and o.rec.outcomes == [] and o.open() == {"__order__": (1, False),
                                                                                   "triage": (1, False)}
    assert o.state.event_ids.count("\x00") == 3  # both applied (their ids recorded), the second without effect
    o(st_("Awaiting Customer", "08:40"))  # pausing another node than the current run's
    assert o.rejected[-1] == INVALID_TRANSITION


def test_pause_twice_changes_nothing_and_pause_without_a_status_run_is_invalid():
    o = Order()(st_("In Progress", "08:00"), st_("Awaiting Customer", "09:00"), st_("Awaiting Customer", "10:00"))
    assert o.rejected == [None, None, None]
    assert o.state.runs["resolution"].paused_at == T("2026-11-21T09:00:00Z")
    first = Order()(st_("Awaiting Customer", "08:00"))
    assert first.rejected == [INVALID_TRANSITION] and first.state is None
    ended = Order()(st_("In Progress", "08:00"), ev("node_completed", "2026-11-21T09:00:00Z", node="resolution"),
                    st_("Awaiting Customer", "09:30"))  # the status run ended: no current status run
    assert ended.rejected == [None, None, INVALID_TRANSITION] and ended.state.status_node is None


def test_a_status_for_a_node_whose_open_run_a_node_started_opened_is_invalid_and_changes_nothing():
    o = Order()(st_("New", "08:00"), ev("node_started", "2026-11-21T08:10:00Z", node="resolution"))
    before = dump_state(o.state)
    o(st_("In Progress", "08:20"))
    assert o.rejected == [None, None, INVALID_TRANSITION]
    assert dump_state(o.state) == before  # triage was not completed either
    o(ev("node_completed", "2026-11-21T08:30:00Z", node="resolution"), st_("In Progress", "08:40"))
    assert o.rejected[-2:] == [None, None]  # now resolution has no open run: a status starts run 2
    assert o.open()["resolution"] == (2, False) and ("triage", 1, "completed_normal", "08:40", 40) in o.outcomes()


def test_node_events_apply_to_status_runs_and_ending_one_leaves_no_current_status_run():
    o = Order()(st_("New", "08:00"), ev("node_paused", "2026-11-21T08:10:00Z", node="triage"),
                st_("New", "08:30"),  # resumes the run a node event paused
                ev("node_completed", "2026-11-21T08:50:00Z", node="triage"),
                st_("In Progress", "09:00"))  # nothing current to complete: just starts resolution
    assert o.rejected == [None] * 5
    assert o.outcomes() == [("triage", 1, "completed_normal", "08:50", 30)]
    assert o.state.status_node == "resolution"


@pytest.mark.parametrize(("end", "states"), [
    ("Resolved", {"triage": "completed_normal", "resolution": "completed_normal", "__order__": "completed_normal"}),
    ("Withdrawn", {"triage": "cancelled", "resolution": "cancelled", "__order__": "cancelled"})])
def test_end_statuses_close_the_order_as_order_completed_and_order_cancelled(end, states):
    o = Order()(st_("New", "08:00"), ev("node_started", "2026-11-21T08:10:00Z", node="resolution"),
                ev("node_paused", "2026-11-21T08:20:00Z", node="resolution"), st_(end, "09:00"),
                st_("New", "09:30"))
    assert o.rejected == [None, None, None, None, INVALID_TRANSITION]
    assert {n: s for n, _, s, _, _ in o.outcomes()} == states
    assert o.state.finished
    if end == "Resolved":  # the paused run ends where its pause began: 10 minutes
        assert ("resolution", 1, "completed_normal", "09:00", 10) in o.outcomes()


def test_the_first_status_starts_the_order_level_run_with_the_segment_the_run_got():
    o = Order()(st_("New", "08:00", attrs={"priority": "P1"}))
    assert o.state.runs["triage"].segment == o.state.runs["__order__"].segment == "p1"
    assert o.state.runs["triage"].commitment == 15 * 60_000_000
    o(st_("In Progress", "08:10", attrs={"priority": "P3"}, segment="gold"))  # a new run takes its own event's
    assert o.state.runs["resolution"].segment == "gold" and o.state.runs["resolution"].attrs == {"priority": "P3"}
    assert o.state.runs["__order__"].segment == "p1"


def test_unknown_statuses_and_processes_without_statuses_are_unknown_node_before_out_of_order():
    o = Order()(st_("New", "08:00"), st_("new", "07:00"), st_("Resolved ", "09:00"), st_("Closed", "09:00"),
                st_("In Progress", "07:00"))
    assert o.rejected == [None, UNKNOWN_NODE, UNKNOWN_NODE, UNKNOWN_NODE, OUT_OF_ORDER]  # exact match only
    plain = Order({k: v for k, v in DOC.items() if k != "statuses"})(st_("New", "08:00"))
    assert plain.rejected == [UNKNOWN_NODE]
    assert "no status mapping" in Engine(policies({k: v for k, v in DOC.items() if k != "statuses"})).apply(
        None, st_("New", "08:00"), Recorder())[1].detail


def test_a_node_field_on_a_status_changed_is_ignored():
    e = decode_event(orjson.dumps({"event_id": "x", "order_id": "o1", "process": "p", "type": "status_changed",
                                   "status": "New", "node": "nosuch", "at": "2026-11-21T08:00:00Z"}))
    assert e.node is None and e.status == "New"
    o = Order()(e)
    assert o.rejected == [None] and "triage" in o.state.runs


@pytest.mark.parametrize("status", [None, "", 3, ["New"]])
def test_a_status_changed_without_a_usable_status_is_malformed(status):
    body = {"event_id": "x", "order_id": "o1", "process": "p", "type": "status_changed", "at": "2026-11-21T08:00:00Z"}
    if status is not None:
        body["status"] = status
    with pytest.raises(Malformed, match="status"):
        decode_event(orjson.dumps(body))


def test_the_current_status_run_survives_the_round_trip_through_bytes():
    o = Order()(st_("In Progress", "08:00"), st_("Awaiting Customer", "09:00"))
    again = load_state(dump_state(o.state), o.engine)
    assert again.status_node == "resolution" and dump_state(again) == dump_state(o.state)
    o.state = again
    o(st_("In Progress", "10:00"))
    assert o.rejected[-1] is None and o.state.runs["resolution"].pauses == (
        (T("2026-11-21T09:00:00Z"), T("2026-11-21T10:00:00Z")),)


@pytest.mark.parametrize(("statuses", "where", "what"), [
    ({"New": "nosuch"}, "statuses.New", "unknown node 'nosuch'"),
    ({"Hold": {"pause": "nosuch"}}, "statuses.Hold.pause", "unknown node 'nosuch'"),
    ({"Done": {"end": "closed"}}, "statuses.Done.end", "expected completed or cancelled"),
    ({"Done": {"end": "completed", "pause": "triage"}}, "statuses.Done", "expected a node name"),
    ({"Done": {"stop": "triage"}}, "statuses.Done", "expected a node name"),
    ({"New": ""}, "statuses.New", "expected a node name"),
    ({"New": "__order__"}, "statuses.New", "unknown node '__order__'"),
    ({1: "triage"}, "statuses.1", "quote it"),
    (["New"], "statuses", "expected a mapping"),
])
def test_bad_status_mappings_are_rejected_with_file_field_and_problem(statuses, where, what):
    with pytest.raises(PolicyError) as err:
        build_policy_set([("p.yaml", {**DOC, "statuses": statuses})])
    found = [str(p) for p in err.value.problems]
    assert any(p.startswith(f"p.yaml: {where}: ") and what in p for p in found), found


# ---------------------------------------------------------------- property: any sequence of statuses

STATUSES = list(DOC["statuses"]) + ["Unknown"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(STATUSES), st.integers(0, 180)), min_size=1, max_size=15))
def test_any_status_sequence_keeps_at_most_one_status_run_and_ends_every_run_once(steps):
    o, t = Order(), T("2026-11-21T08:00:00Z")
    expected_current = None  # computed from the rules, independently of the engine's bookkeeping
    closed = False
    for i, (status, minutes) in enumerate(steps):
        t += minutes * 60_000_000
        o(Event(f"s{i}", "o1", "p", "status_changed", None, t, status=status))
        target = DOC["statuses"].get(status)
        if closed or target is None:
            assert o.rejected[-1] is not None
            continue
        if isinstance(target, dict) and "end" in target:
            closed, expected_current = True, None
        elif isinstance(target, dict):  # pause
            assert (o.rejected[-1] is None) == (expected_current == target["pause"])
        else:
            expected_current = target
        if o.rejected[-1] is None and o.state.status_node is not None:
            assert o.state.status_node == expected_current
    if o.state is not None:
        assert o.state.status_node == expected_current
        runs = [r for r in o.state.runs if r != "__order__"]
        assert len(runs) <= 1 and (not runs or runs[0] == expected_current)
    ended = [(x["node"], x["run"]) for x in o.rec.outcomes]
    assert len(ended) == len(set(ended))  # no run ends twice
