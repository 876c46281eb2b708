"""The runs of the query API: the table's open runs judged at now, the board's run records, the merge."""

from __future__ import annotations

from monitor.query.runs import board_run, merge_runs, table_run

from ..helpers import ev
from .support import POLICY, T0, S, at, board_record, order_state, schema


def test_open_runs_judged_at_now():
    engine, state, sink = order_state(ev("node_started", at(0), node="n", segment="gold", attrs={"r": 1}),
                                      ev("node_started", at(600), node="m"),
                                      ev("node_paused", at(1800), node="m"))
    runs = state.runs
    r = table_run(state, runs["n"], T0 + 3600 * S)
    assert r == {
        "node": "n", "run": 1, "state": "in_progress_normal", "level": "normal", "segment": "gold",
        "owner": "team-n", "policy_version": 1, "attrs": {"r": 1}, "started_at": "2026-11-21T08:00:00Z",
        "ended_at": None, "paused": False, "paused_at": None, "elapsed_s": 3600.0, "commitment_s": 7200.0,
        "tolerance_s": 14400.0, "crossings": [], "source": "table",
    }
    assert table_run(state, runs["n"], T0 + 9000 * S)["state"] == "in_progress_acceptable"
    late = table_run(state, runs["n"], T0 + 5 * 3600 * S)
    assert (late["state"], late["level"], late["elapsed_s"]) == ("in_progress_warning", "warning", 18000.0)
    paused = table_run(state, runs["m"], T0 + 5 * 3600 * S)  # paused after 20 min of its 1 h
    assert (paused["state"], paused["paused"], paused["paused_at"], paused["elapsed_s"]) == (
        "in_progress_normal", True, "2026-11-21T08:30:00Z", 1200.0)
    order_run = table_run(state, runs["__order__"], T0 + 3600 * S)
    assert (order_run["owner"], order_run["commitment_s"], order_run["crossings"]) == ("desk", 86400.0, [])
    for run in (r, late, paused, order_run):
        schema("Run").validate(run)


def test_announced_crossings_follow_the_engine():
    engine, state, sink = order_state(ev("node_started", at(0), node="n"))
    engine.advance(state, T0 + 7201 * S, sink)  # approaching at 1h, commitment at 2h announced
    run = table_run(state, state.runs["n"], T0 + 7201 * S)
    assert run["crossings"] == ["approaching", "commitment_breached"] == [w["kind"] for w in sink.warnings]
    assert run["state"] == "in_progress_acceptable"
    plain = {k: v for k, v in POLICY.items() if k != "early_warning"}  # no approaching crossing
    engine, state, sink = order_state(ev("node_started", at(0), node="n"), policy=plain)
    engine.advance(state, T0 + 5 * 3600 * S, sink)
    run = table_run(state, state.runs["n"], T0 + 5 * 3600 * S)
    assert run["crossings"] == ["commitment_breached", "tolerance_breached"]
    assert [w["kind"] for w in sink.warnings if w["node"] == "n"] == run["crossings"]


def test_board_runs_and_merge():
    engine, state, sink = order_state(ev("node_started", at(0), node="n"), ev("node_completed", at(9000), node="n"),
                                      ev("node_started", at(9000), node="n"))
    engine.advance(state, T0 + 9001 * S, sink)
    [outcome] = sink.outcomes
    ended = board_record(outcome, ["approaching", "commitment_breached"], ended=True)
    b = board_run(ended)
    assert (b["state"], b["level"], b["elapsed_s"], b["ended_at"], b["paused"], b["source"]) == (
        "completed_acceptable", "acceptable", 9000.0, "2026-11-21T10:30:00Z", False, "board")
    schema("Run").validate(b)
    open_on_board = board_record({**outcome, "run": 2, "started_at": at(9000)}, [], ended=False)
    stale = {**ended, "run": 2}  # the board thinks run 2 ended: the table's open run wins
    open_b = board_run(open_on_board)
    assert (open_b["state"], open_b["elapsed_s"], open_b["paused"]) == ("in_progress_normal", None, None)
    schema("Run").validate(open_b)
    table_runs = [table_run(state, r, T0 + 9001 * S) for r in state.runs.values()]
    merged = merge_runs(table_runs, [open_on_board, stale, ended])
    assert [(r["node"], r["run"], r["source"]) for r in merged] == [("__order__", 1, "table"), ("n", 1, "board"),
                                                                  ("n", 2, "table")]
    # Lua's cjson writes an empty list as {}: read as no crossings
    assert board_run({**open_on_board, "crossings": {}})["crossings"] == []
