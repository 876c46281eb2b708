"""Graded early warnings (CONTRACTS section 12): the policy field, the `p` label of the ids, the crossings at f*C."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.engine import Engine, dump_state, load_state, next_deadline
from monitor.core.policies import PolicyError, build_policy_set
from monitor.core.thresholds import threshold_label

from ..helpers import Recorder, T, ev, policies

GRADED = {"process": "p", "early_warning": [0.75, 0.5],  # any order in the file: crossed in ascending order
          "order": {"commitment": "4h", "tolerance": "5h"},
          "nodes": {"n": {"commitment": "1h", "tolerance": "2h"}, "m": {"commitment": "10m", "tolerance": "10m"}}}


@pytest.mark.parametrize(("fraction", "label"), [
    (0.5, "50"), (0.75, "75"), (0.875, "87.5"), (0.29, "29"), (0.57, "57"), (0.1, "10"), (0.9, "90"),
    (0.001, "0.1"), (0.00001, "0.001"), (0.123456, "12.3456"), (0.3333, "33.33"), (0.05, "5"), (0.999, "99.9"),
    (0.07, "7"), (0.1234567, "12.34567"), (0.000000123, "0.0000123"), (0.12345678901, "12.345678901"),
])
def test_the_label_is_the_fraction_as_written_times_100_in_plain_decimal(fraction, label):
    # 0.29 * 100 == 28.999999999999996 and 0.57 * 100 == 56.99999999999999 in floating point: never in a label
    assert threshold_label(fraction) == label


def run(doc, events, now=None):
    engine, rec = Engine(policies(doc)), Recorder()
    state, rejections = None, []
    for e in events:
        state, rej = engine.apply(state, e, rec)
        if rej:
            rejections.append(rej.reason)
    if now is not None:
        engine.advance(state, T(now), rec)
    return engine, state, rec, rejections


def test_each_threshold_crosses_at_its_exact_instant_with_its_id_and_threshold():
    _, state, rec, _ = run(GRADED, [ev("node_started", "2026-11-21T08:00:00Z")], now="2026-11-21T10:30:00Z")
    got = [(w["warning_id"], w["kind"], w.get("threshold"), w["crossed_at"], w["state"], w["elapsed_s"])
           for w in rec.warnings if w["node"] == "n"]
    assert got == [
        ("o1:n:1:approaching@50", "approaching", 0.5, "2026-11-21T08:30:00Z", "in_progress_normal", 1800.0),
        ("o1:n:1:approaching@75", "approaching", 0.75, "2026-11-21T08:45:00Z", "in_progress_normal", 2700.0),
        ("o1:n:1:commitment_breached", "commitment_breached", None, "2026-11-21T09:00:00Z", "in_progress_acceptable",
         3600.0),
        ("o1:n:1:tolerance_breached", "tolerance_breached", None, "2026-11-21T10:00:00Z", "in_progress_warning",
         7200.0)]
    assert all("threshold" not in w for w in rec.warnings if w["kind"] != "approaching")
    order = [w["warning_id"] for w in rec.warnings if w["node"] == "__order__"]
    assert order == ["o1:__order__:1:approaching@50"]  # 2h of 4h: the order-level run has the thresholds too


def test_the_instant_of_a_threshold_is_strict_and_a_run_ending_on_it_does_not_cross():
    engine, state, rec, _ = run(GRADED, [ev("node_started", "2026-11-21T08:00:00Z")])
    assert next_deadline(state) == T("2026-11-21T08:30:00Z")
    engine.advance(state, T("2026-11-21T08:30:00Z"), rec)
    assert rec.warnings == []  # crossed_at < now only
    engine.advance(state, T("2026-11-21T08:30:00.000001Z"), rec)
    assert [w["warning_id"] for w in rec.warnings] == ["o1:n:1:approaching@50"]
    state, _ = engine.apply(state, ev("node_completed", "2026-11-21T08:45:00Z"), rec)
    assert [w["warning_id"] for w in rec.warnings] == ["o1:n:1:approaching@50"]  # ended at 75 %: not crossed
    assert rec.outcomes[-1]["state"] == "completed_normal"


def test_a_pause_across_a_threshold_moves_it_and_the_rest_follow():
    _, _, rec, _ = run(GRADED, [ev("node_started", "2026-11-21T08:00:00Z"), ev("node_paused", "2026-11-21T08:20:00Z"),
                                ev("node_resumed", "2026-11-21T09:20:00Z")], now="2026-11-21T10:00:00Z")
    assert [(w["warning_id"], w["crossed_at"]) for w in rec.warnings if w["node"] == "n"] == [
        ("o1:n:1:approaching@50", "2026-11-21T09:30:00Z"), ("o1:n:1:approaching@75", "2026-11-21T09:45:00Z")]


def test_a_single_number_keeps_the_plain_id_and_a_one_element_list_uses_the_graded_one():
    single = {**GRADED, "early_warning": 0.5}
    one = {**GRADED, "early_warning": [0.5]}
    _, _, rec1, _ = run(single, [ev("node_started", "2026-11-21T08:00:00Z", node="m")], now="2026-11-21T09:00:00Z")
    _, _, rec2, _ = run(one, [ev("node_started", "2026-11-21T08:00:00Z", node="m")], now="2026-11-21T09:00:00Z")
    first = [w for w in rec1.warnings if w["node"] == "m"][0]
    assert first["warning_id"] == "o1:m:1:approaching" and "threshold" not in first
    second = [w for w in rec2.warnings if w["node"] == "m"][0]
    assert second["warning_id"] == "o1:m:1:approaching@50" and second["threshold"] == 0.5
    assert first["crossed_at"] == second["crossed_at"] == "2026-11-21T08:05:00Z"
    # equal commitment and tolerance: the breaches follow the early warnings into warning at once
    assert [w["kind"] for w in rec2.warnings if w["node"] == "m"] == [
        "approaching", "commitment_breached", "tolerance_breached"]


def test_graded_runs_survive_the_round_trip_through_bytes_mid_way():
    engine, state, rec, _ = run(GRADED, [ev("node_started", "2026-11-21T08:00:00Z")], now="2026-11-21T08:40:00Z")
    data = dump_state(state)
    again = load_state(data, engine)
    assert dump_state(again) == data
    engine.advance(again, T("2026-11-21T09:10:00Z"), rec)
    assert [w["warning_id"] for w in rec.warnings if w["node"] == "n"] == [
        "o1:n:1:approaching@50", "o1:n:1:approaching@75", "o1:n:1:commitment_breached"]


def test_a_run_keeps_the_thresholds_it_started_under():
    engine, rec = Engine(policies(GRADED)), Recorder()
    state, _ = engine.apply(None, ev("node_started", "2026-11-21T08:00:00Z"), rec)
    engine.set_policies(policies({**GRADED, "early_warning": 0.9, "version": 2}))
    state, _ = engine.apply(state, ev("node_started", "2026-11-21T08:00:00Z", node="m"), rec)
    engine.advance(state, T("2026-11-21T08:50:00Z"), rec)
    assert sorted((w["crossed_at"], w["warning_id"]) for w in rec.warnings) == [
        ("2026-11-21T08:09:00Z", "o1:m:1:approaching"), ("2026-11-21T08:10:00Z", "o1:m:1:commitment_breached"),
        ("2026-11-21T08:10:00Z", "o1:m:1:tolerance_breached"), ("2026-11-21T08:30:00Z", "o1:n:1:approaching@50"),
        ("2026-11-21T08:45:00Z", "o1:n:1:approaching@75")]


def problems(doc):
    with pytest.raises(PolicyError) as err:
        build_policy_set([("p.yaml", doc)])
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(("early", "where", "what"), [
    ([], "early_warning", "an empty list"),
    ([0.5, 1], "early_warning[1]", "between 0 and 1"),
    ([0, 0.5], "early_warning[0]", "between 0 and 1"),
    ([0.5, -0.1], "early_warning[1]", "between 0 and 1"),
    ([0.5, True], "early_warning[1]", "between 0 and 1"),
    ([0.5, "0.7"], "early_warning[1]", "between 0 and 1"),
    ([0.5, 0.75, 0.5], "early_warning", "0.5 is given twice"),
    ([0.5, 0.50], "early_warning", "given twice"),  # equal as numbers: the same threshold
    ("half", "early_warning", "a fraction"),
    (1.5, "early_warning", "a fraction"),
])
def test_bad_threshold_lists_are_rejected_with_file_field_and_problem(early, where, what):
    found = problems({**GRADED, "early_warning": early})
    assert any(p.startswith(f"p.yaml: {where}: ") and what in p for p in found), found


def test_thresholds_equal_after_rounding_to_the_microsecond_are_not_distinct():
    # 0.5 and 0.5000001 of 1s both fall at 500000 microseconds: two warnings for one instant are rejected
    doc = {"process": "p", "early_warning": [0.5, 0.5000001], "nodes": {"x": {"commitment": "1h", "tolerance": "2h"},
                                                                       "y": {"commitment": "1s", "tolerance": "2s"}}}
    assert problems(doc) == ["p.yaml: early_warning: 0.5 and 0.5000001 are not distinct thresholds for nodes.y "
                             "(commitment 1s): both fall at 0.5s"]
    doc["nodes"]["y"] = {"commitment": "1h", "tolerance": "2h"}  # 1800s and 1800.00036s: distinct
    assert build_policy_set([("p.yaml", doc)])[0].get("p").nodes["y"].grades == (
        (0.5, 1_800_000_000), (0.5000001, 1_800_000_360))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 999), min_size=1, max_size=5, unique=True), st.integers(1, 10_000))
def test_graded_crossings_come_in_ascending_order_each_at_its_fraction_of_the_commitment(permille, minutes):
    fractions = [p / 1000 for p in permille]
    labels = {p / 1000: f"{p // 10}" + (f".{p % 10}" if p % 10 else "") for p in permille}  # 125 -> 12.5
    doc = {"process": "p", "early_warning": fractions,
           "nodes": {"n": {"commitment": f"{minutes}m", "tolerance": f"{2 * minutes}m"}}}
    try:
        ps, _ = build_policy_set([("p.yaml", doc)])
    except PolicyError as exc:  # only when two fractions round to one microsecond (never here: C >= 1 minute)
        pytest.fail(str(exc))
    engine, rec = Engine(ps), Recorder()
    start = T("2026-11-21T08:00:00Z")
    state, _ = engine.apply(None, ev("node_started", "2026-11-21T08:00:00Z"), rec)
    engine.advance(state, start + 3 * minutes * 60_000_000, rec)
    early = [w for w in rec.warnings if w["kind"] == "approaching"]
    assert [w["threshold"] for w in early] == sorted(fractions)
    for w in early:
        # f*C exactly, in microseconds (f has three decimals, C whole minutes: the product is whole)
        assert round(w["elapsed_s"] * 1_000_000) == round(w["threshold"] * 1000) * minutes * 60_000
        assert T(w["crossed_at"]) - start == round(w["elapsed_s"] * 1_000_000)
        assert w["warning_id"] == f"o1:n:1:approaching@{labels[w['threshold']]}"
    assert [w["kind"] for w in rec.warnings[len(early):]] == ["commitment_breached", "tolerance_breached"]


def test_an_open_runs_view_lists_each_crossing_kind_once():
    from monitor.core.records import announced_crossings, open_run_view

    engine, state, rec, _ = run(GRADED, [ev("node_started", "2026-11-21T08:00:00Z")])
    run_ = state.runs["n"]
    assert announced_crossings(run_) == []
    engine.advance(state, T("2026-11-21T08:31:00Z"), rec)
    assert announced_crossings(run_) == ["approaching"]
    engine.advance(state, T("2026-11-21T09:01:00Z"), rec)
    assert announced_crossings(run_) == ["approaching", "commitment_breached"]  # as the breach board keeps them
    view = open_run_view(run_, T("2026-11-21T09:01:00Z"))
    assert (view["state"], view["level"], view["elapsed_s"]) == ("in_progress_acceptable", "acceptable", 3660.0)
    plain = run({**GRADED, "early_warning": None}, [ev("node_started", "2026-11-21T08:00:00Z")],
                now="2026-11-21T09:01:00Z")[1].runs["n"]
    assert announced_crossings(plain) == ["commitment_breached"]
