"""The order state machine: crossings at their exact instants, the seven states, invalid events."""

import pytest

from monitor.core.engine import Engine, dump_state, load_state, next_deadline
from monitor.core.vocabulary import (
    DUPLICATE_EVENT,
    INVALID_TRANSITION,
    OUT_OF_ORDER,
    UNKNOWN_NODE,
    UNKNOWN_PROCESS,
)

from ..helpers import Recorder, T, ev, policies

BASIC = {"process": "p", "version": 2, "nodes": {"n": {"commitment": "1h", "tolerance": "2h", "owner": "team"},
                                                  "m": {"commitment": "30m", "tolerance": "30m"}}}


def run_events(ps, events, now=None):
    engine, rec = Engine(ps), Recorder()
    state, rejections = None, []
    for e in events:
        state, rej = engine.apply(state, e, rec)
        if rej:
            rejections.append(rej.reason)
    if now is not None and state is not None:
        engine.advance(state, T(now), rec)
    return engine, state, rec, rejections


def test_completion_exactly_at_the_commitment_is_normal_and_announces_nothing():
    _, state, rec, _ = run_events(policies(BASIC), [
        ev("node_started", "2026-11-21T08:00:00Z"), ev("node_completed", "2026-11-21T09:00:00Z")])
    assert rec.warnings == []
    assert [o["state"] for o in rec.outcomes] == ["completed_normal"]
    assert rec.outcomes[0]["elapsed_s"] == 3600.0
    assert state.runs == {}


def test_one_microsecond_over_is_acceptable_with_breach_and_resolution():
    _, _, rec, _ = run_events(policies(BASIC), [
        ev("node_started", "2026-11-21T08:00:00Z"), ev("node_completed", "2026-11-21T09:00:00.000001Z")])
    assert rec.kinds() == [("commitment_breached", "2026-11-21T09:00:00Z"), ("resolved", "2026-11-21T09:00:00.000001Z")]
    breach, resolved = rec.warnings
    assert breach["state"] == "in_progress_acceptable" and breach["elapsed_s"] == 3600.0
    assert breach["warning_id"] == "o1:n:1:commitment_breached"
    assert breach["owner"] == "team" and breach["policy_version"] == 2
    assert resolved["state"] == "completed_acceptable" and resolved["elapsed_s"] == 3600.000001
    assert rec.outcomes[0]["state"] == "completed_acceptable"


def test_advance_announces_only_strictly_past_crossings_and_each_once():
    engine, state, rec, _ = run_events(policies(BASIC), [ev("node_started", "2026-11-21T08:00:00Z")])
    assert next_deadline(state) == T("2026-11-21T09:00:00Z")
    engine.advance(state, T("2026-11-21T09:00:00Z"), rec)
    assert rec.warnings == []
    engine.advance(state, T("2026-11-21T09:30:00Z"), rec)
    engine.advance(state, T("2026-11-21T09:30:00Z"), rec)
    assert rec.kinds() == [("commitment_breached", "2026-11-21T09:00:00Z")]
    assert next_deadline(state) == T("2026-11-21T10:00:00Z")
    engine.advance(state, T("2026-11-21T12:00:00Z"), rec)
    assert rec.kinds()[-1] == ("tolerance_breached", "2026-11-21T10:00:00Z")
    assert rec.warnings[-1]["state"] == "in_progress_warning"
    assert next_deadline(state) is None


def test_equal_commitment_and_tolerance_cross_together_into_warning():
    _, _, rec, _ = run_events(policies(BASIC), [ev("node_started", "2026-11-21T08:00:00Z", node="m")],
                              now="2026-11-21T08:30:01Z")
    assert [(w["kind"], w["state"]) for w in rec.warnings] == [
        ("commitment_breached", "in_progress_warning"), ("tolerance_breached", "in_progress_warning")]


def test_completion_at_the_crossing_instant_does_not_cross():
    _, _, rec, _ = run_events(policies(BASIC), [
        ev("node_started", "2026-11-21T08:00:00Z"),
        ev("node_completed", "2026-11-21T09:00:00Z")], now="2026-11-21T12:00:00Z")
    assert rec.warnings == []


def test_pause_at_the_crossing_instant_defers_the_crossing_to_the_resume():
    engine, state, rec, _ = run_events(policies(BASIC), [
        ev("node_started", "2026-11-21T08:00:00Z"),
        ev("node_paused", "2026-11-21T09:00:00Z")], now="2026-11-21T11:00:00Z")
    assert rec.warnings == [] and next_deadline(state) is None
    state, rej = engine.apply(state, ev("node_resumed", "2026-11-21T11:30:00Z"), rec)
    assert rej is None
    assert next_deadline(state) == T("2026-11-21T11:30:00Z")
    engine.advance(state, T("2026-11-21T11:30:00.000001Z"), rec)
    assert rec.kinds() == [("commitment_breached", "2026-11-21T11:30:00Z")]
    state, _ = engine.apply(state, ev("node_completed", "2026-11-21T12:00:00Z"), rec)
    assert rec.outcomes[-1]["elapsed_s"] == 5400.0  # 1h before the pause + 30m after
    assert rec.outcomes[-1]["state"] == "completed_acceptable"


def test_paused_runs_do_not_age_and_complete_while_paused():
    _, _, rec, _ = run_events(policies(BASIC), [
        ev("node_started", "2026-11-21T08:00:00Z"),
        ev("node_paused", "2026-11-21T08:10:00Z"),
        ev("node_resumed", "2026-11-21T10:00:00Z"),
        ev("node_paused", "2026-11-21T10:20:00Z"),
        ev("node_completed", "2026-11-21T15:00:00Z")])
    assert rec.warnings == []
    assert rec.outcomes[0]["elapsed_s"] == 1800.0 and rec.outcomes[0]["state"] == "completed_normal"


def test_rework_runs_are_numbered_and_judged_separately():
    _, _, rec, _ = run_events(policies(BASIC), [
        ev("node_started", "2026-11-21T08:00:00Z"), ev("node_completed", "2026-11-21T08:10:00Z"),
        ev("node_started", "2026-11-21T09:00:00Z"), ev("node_cancelled", "2026-11-21T11:00:00Z")])
    assert [(o["run"], o["state"]) for o in rec.outcomes] == [(1, "completed_normal"), (2, "cancelled")]
    assert [w["warning_id"] for w in rec.warnings] == ["o1:n:2:commitment_breached", "o1:n:2:resolved"]
    assert rec.warnings[-1]["state"] == "cancelled"


def test_duplicate_out_of_order_and_transitions_are_rejected_in_contract_order():
    _, state, rec, rejections = run_events(policies(BASIC), [
        ev("node_started", "2026-11-21T08:00:00Z", event_id="a"),
        ev("node_started", "2026-11-21T08:00:00Z", event_id="a"),  # duplicate
        ev("node_started", "2026-11-21T08:05:00Z", event_id="b"),  # already open
        ev("node_completed", "2026-11-21T07:00:00Z", event_id="c"),  # out of order
        ev("node_resumed", "2026-11-21T08:06:00Z", event_id="d"),  # not paused
        ev("node_completed", "2026-11-21T08:06:00Z", node="m"),  # no open run
        ev("node_started", "2026-11-21T08:06:00Z", node="zzz"),  # unknown node
        ev("node_started", "2026-11-21T08:06:00Z", process="nope"),  # unknown process
        ev("order_completed", "2026-11-21T08:07:00Z", node=None),
        ev("node_completed", "2026-11-21T08:08:00Z"),  # after the order closed
        ev("node_completed", "2026-11-21T08:07:00Z", event_id="a"),  # duplicate beats closed and out of order
        ev("node_completed", "2026-11-21T08:00:00Z"),  # out of order beats closed
    ])
    assert rejections == [DUPLICATE_EVENT, INVALID_TRANSITION, OUT_OF_ORDER, INVALID_TRANSITION,
                          INVALID_TRANSITION, UNKNOWN_NODE, UNKNOWN_PROCESS, INVALID_TRANSITION,
                          DUPLICATE_EVENT, OUT_OF_ORDER]
    assert state.is_closed


def test_first_event_must_open_a_run():
    engine, rec = Engine(policies(BASIC)), Recorder()
    for etype in ("node_completed", "node_paused", "node_resumed", "node_cancelled"):
        state, rej = engine.apply(None, ev(etype, "2026-11-21T08:00:00Z"), rec)
        assert state is None and rej.reason == INVALID_TRANSITION


def test_same_time_events_are_in_order_and_unknown_node_beats_out_of_order():
    _, _, _, rejections = run_events(policies(BASIC), [
        ev("node_started", "2026-11-21T08:00:00Z"), ev("node_completed", "2026-11-21T08:00:00Z"),
        ev("node_started", "2026-11-21T07:00:00Z", node="zzz")])
    assert rejections == [UNKNOWN_NODE]


def test_order_level_run_and_order_cancellation():
    doc = {**BASIC, "order": {"commitment": "2h", "tolerance": "3h", "owner": "desk"}}
    _, state, rec, _ = run_events(policies(doc), [
        ev("node_started", "2026-11-21T08:00:00Z", segment="gold", attrs={"region": "north"}),
        ev("node_completed", "2026-11-21T08:30:00Z"),
        ev("node_started", "2026-11-21T09:00:00Z", node="m"),
        ev("order_cancelled", "2026-11-21T11:00:00Z", node=None)])
    by_node = {(o["node"], o["run"]): o for o in rec.outcomes}
    assert by_node[("m", 1)]["state"] == "cancelled"
    order = by_node[("__order__", 1)]
    assert order["state"] == "cancelled" and order["segment"] == "gold" and order["attrs"] == {"region": "north"}
    assert order["owner"] == "desk" and order["elapsed_s"] == 3 * 3600.0
    kinds = {w["warning_id"] for w in rec.warnings}
    assert "o1:__order__:1:commitment_breached" in kinds and "o1:__order__:1:resolved" in kinds
    assert "o1:m:1:tolerance_breached" in kinds
    assert state.finished


def test_order_completed_completes_every_open_run_at_its_time():
    # CONTRACTS section 2 (changed rule): closing the order stops every clock, each judged on its elapsed then
    doc = {**BASIC, "order": {"commitment": "2h", "tolerance": "3h"}}
    engine, state, rec, rej = run_events(policies(doc), [
        ev("node_started", "2026-11-21T08:00:00Z"), ev("node_started", "2026-11-21T08:00:00Z", node="m"),
        ev("node_completed", "2026-11-21T08:20:00Z"), ev("order_completed", "2026-11-21T09:00:00Z", node=None)])
    assert rej == []
    # m (30m / 30m) ran 1h: completed_warning; its breach is resolved at the order's completion
    assert [(o["node"], o["state"], o["ended_at"], o["elapsed_s"]) for o in rec.outcomes] == [
        ("n", "completed_normal", "2026-11-21T08:20:00Z", 1200.0),
        ("__order__", "completed_normal", "2026-11-21T09:00:00Z", 3600.0),
        ("m", "completed_warning", "2026-11-21T09:00:00Z", 3600.0)]
    assert rec.kinds()[-1] == ("resolved", "2026-11-21T09:00:00Z") and rec.warnings[-1]["node"] == "m"
    assert state.runs == {} and state.is_closed and state.finished
    engine.advance(state, T("2026-11-22T00:00:00Z"), rec)
    assert rec.kinds()[-1] == ("resolved", "2026-11-21T09:00:00Z")  # nothing crosses after the order closed


def test_order_completed_with_a_paused_open_run_ends_it_where_its_pause_began():
    _, state, rec, rej = run_events(policies(BASIC), [
        ev("node_started", "2026-11-21T08:00:00Z"),
        ev("node_paused", "2026-11-21T08:50:00Z"),
        ev("order_completed", "2026-11-21T12:00:00Z", node=None)], now="2026-11-22T00:00:00Z")
    assert rej == [] and rec.warnings == []  # 50m of 1h used: paused runs do not age, even while the order closes
    assert [(o["node"], o["state"], o["ended_at"], o["elapsed_s"]) for o in rec.outcomes] == [
        ("n", "completed_normal", "2026-11-21T12:00:00Z", 3000.0)]
    assert state.finished


def test_segment_overrides_field_by_field_and_unknown_segment_uses_defaults():
    doc = {**BASIC, "segments": {"gold": {"n": {"commitment": "10m"}}}}
    _, _, rec, _ = run_events(policies(doc), [
        ev("node_started", "2026-11-21T08:00:00Z", segment="gold"),
        ev("node_started", "2026-11-21T08:00:00Z", order="o2", segment="silver")], now="2026-11-21T08:20:00Z")
    assert [(w["order_id"], w["commitment_s"], w["tolerance_s"]) for w in rec.warnings] == [("o1", 600.0, 7200.0)]


def test_early_warning_approaching():
    doc = {**BASIC, "early_warning": 0.75}
    _, _, rec, _ = run_events(policies(doc), [ev("node_started", "2026-11-21T08:00:00Z")], now="2026-11-21T08:50:00Z")
    assert [(w["kind"], w["crossed_at"], w["state"], w["elapsed_s"]) for w in rec.warnings] == [
        ("approaching", "2026-11-21T08:45:00Z", "in_progress_normal", 2700.0)]


def test_a_run_keeps_the_policy_version_it_started_under():
    engine, rec = Engine(policies(BASIC)), Recorder()
    state, _ = engine.apply(None, ev("node_started", "2026-11-21T08:00:00Z"), rec)
    engine.set_policies(policies({**BASIC, "version": 3, "nodes": {**BASIC["nodes"], "n": {"commitment": "5m", "tolerance": "6m"}}}))
    state, _ = engine.apply(state, ev("node_started", "2026-11-21T08:00:00Z", node="m"), rec)
    state, _ = engine.apply(state, ev("node_completed", "2026-11-21T08:30:00Z"), rec)
    assert rec.outcomes[0]["policy_version"] == 2 and rec.outcomes[0]["state"] == "completed_normal"
    engine.advance(state, T("2026-11-21T09:00:00Z"), rec)
    assert {w["policy_version"] for w in rec.warnings} == {3}


def test_late_completion_after_an_announced_breach_resolves_at_its_own_time():
    engine, rec = Engine(policies(BASIC)), Recorder()
    state, _ = engine.apply(None, ev("node_started", "2026-11-21T08:00:00Z"), rec)
    engine.advance(state, T("2026-11-21T09:30:00Z"), rec)
    state, rej = engine.apply(state, ev("node_completed", "2026-11-21T08:59:00Z"), rec)
    assert rej is None
    assert rec.outcomes[0]["state"] == "completed_normal"
    assert rec.kinds()[-1] == ("resolved", "2026-11-21T08:59:00Z")


def test_calendar_crossing_skips_closed_time():
    cal = {"calendars": {"office": {"timezone": "Europe/Berlin", "hours": {
        d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-11-23"]}}}
    doc = {**BASIC, "calendar": "office"}
    _, _, rec, _ = run_events(policies(doc, calendars=cal), [
        ev("node_started", "2026-11-20T17:30:00+01:00")], now="2026-11-25T00:00:00Z")
    # Friday 17:30-18:00 is 30m; Monday is a holiday; the 1h commitment is used up Tuesday 09:30
    assert rec.kinds()[:2] == [("commitment_breached", "2026-11-24T08:30:00Z"),
                               ("tolerance_breached", "2026-11-24T09:30:00Z")]


@pytest.mark.parametrize("cut", range(1, 7))
def test_state_round_trips_through_bytes_without_repeating_crossings(cut):
    doc = {**BASIC, "early_warning": 0.5, "order": {"commitment": "3h", "tolerance": "4h"}}
    events = [ev("node_started", "2026-11-21T08:00:00Z"), ev("node_paused", "2026-11-21T08:40:00Z"),
              ev("node_resumed", "2026-11-21T09:00:00Z"), ev("node_started", "2026-11-21T09:00:00Z", node="m"),
              ev("node_completed", "2026-11-21T10:00:00Z", node="m"), ev("node_completed", "2026-11-21T12:00:00Z")]
    ps = policies(doc)
    ref_engine, ref_rec = Engine(ps), Recorder()
    ref = None
    for e in events:
        ref, _ = ref_engine.apply(ref, e, ref_rec)
    engine, rec = Engine(ps), Recorder()
    state = None
    for i, e in enumerate(events):
        if i == cut:
            engine.advance(state, e.at, rec)
            state = load_state(dump_state(state), engine)
        state, _ = engine.apply(state, e, rec)
    assert rec.warnings == ref_rec.warnings and rec.outcomes == ref_rec.outcomes
    assert dump_state(state) == dump_state(ref)
    assert len(dump_state(state)) < 600


def test_the_longest_limits_near_the_end_of_time_neither_crash_nor_cross():
    # 100-year limits on a run started in the last hour of year 9999: the deadlines lie past every instant an
    # event or `now` can have; the run is judged and its state still serialises
    longest = {"process": "p", "nodes": {"n": {"commitment": "36525d", "tolerance": "36525d"}}}
    sparse = {**longest, "calendar": "sparse"}
    calendars = {"calendars": {"sparse": {"timezone": "Europe/Berlin", "hours": {"mon": ["09:00-09:01"]}}}}
    for doc in (longest, sparse):
        engine, state, rec, rejections = run_events(policies(doc, calendars=calendars), [
            ev("node_started", "9999-12-31T23:00:00Z")], now="9999-12-31T23:59:59.999999Z")
        assert rejections == [] and rec.warnings == []
        assert next_deadline(state) > T("9999-12-31T23:59:59.999999Z")
        assert state.runs["n"].judge(T("9999-12-31T23:59:59.999999Z")) == "in_progress_normal"
        assert dump_state(load_state(dump_state(state), engine)) == dump_state(state)


def test_replay_counts_an_engine_failure_as_internal_error_and_leaves_the_order_as_it_was(monkeypatch):
    from monitor.core.events import event_from_object
    from monitor.core.replay import replay

    pol = policies({"process": "p", "nodes": {"n": {"commitment": "1h", "tolerance": "2h"},
                                              "m": {"commitment": "1h", "tolerance": "2h"}}})

    def e(i, order, etype, minutes, node="n"):
        return event_from_object({"event_id": f"e{i}", "order_id": order, "process": "p", "type": etype,
                                  "node": node, "at": f"2026-11-21T08:{minutes:02d}:00Z"})

    items = [e(1, "a", "node_started", 0), e(2, "b", "node_started", 1), e(3, "a", "node_completed", 2),
             e(4, "a", "node_started", 3, "m"), e(5, "b", "node_completed", 4)]
    real_apply = Engine.apply

    def failing(self, state, ev, sink):
        if ev.event_id == "e3":  # fails after the engine has started to change the order
            real_apply(self, state, ev, sink)
            raise RuntimeError("injected")
        return real_apply(self, state, ev, sink)

    monkeypatch.setattr(Engine, "apply", failing)
    out = replay(pol, lambda: items, T("2026-11-21T08:30:00Z"))
    monkeypatch.undo()
    assert out["invalid"]["internal_error"] == 1
    # the order is as it was before e3: n still open (in progress), m started; b unaffected
    rows = {(r["process"], r["node"]): r for r in out["summary"]}
    assert rows[("p", "n")]["in_progress_normal"] == 1 and rows[("p", "n")]["completed_normal"] == 1
    assert rows[("p", "m")]["in_progress_normal"] == 1
    expected = replay(pol, lambda: [i for i in items if i.event_id != "e3"], T("2026-11-21T08:30:00Z"))
    assert out["summary"] == expected["summary"] and out["warnings"] == expected["warnings"]


def test_set_policies_names_the_calendars_it_redefines():
    doc = {"process": "p", "calendar": "desk", "nodes": {"n": {"commitment": "1h", "tolerance": "2h"}}}

    def cals(holidays=(), hours="09:00-17:00", **more):
        return {"calendars": {"desk": {"timezone": "Europe/Berlin", "hours": {"mon": [hours], "tue": [hours]},
                                       "holidays": list(holidays)}, **more}}

    engine = Engine(policies(doc, calendars=cals()))
    assert engine.set_policies(policies(doc, calendars=cals())) == frozenset()  # the same definition again
    other = {"other": {"timezone": "UTC", "hours": {"wed": ["09:00-10:00"]}}}
    assert engine.set_policies(policies(doc, calendars=cals(**other))) == frozenset()  # a new name is no change
    assert engine.set_policies(policies(doc, calendars=cals(["2026-12-25"], **other))) == {"desk"}  # a holiday
    assert engine.set_policies(policies(doc, calendars=cals(["2026-12-25"], "09:00-18:00", **other))) == {"desk"}
