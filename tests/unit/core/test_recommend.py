"""Limit recommendations (CONTRACTS.md section 10): the smallest multiple of the granularity that meets the target
(the multiple below does not), with open and cancelled runs counted as the contract says, checked by trying
every multiple against the runs of an independent model (tests/unit/runs_oracle.py)."""

from __future__ import annotations

import pytest

from monitor.core.policies import load_policy_dir
from monitor.core.recommend import default_tolerance_target
from monitor.eventlog import read_events
from monitor.reports.analyses import recommend

from ..runs_oracle import LIMITS, generate, minute_of, runs_of, write_events, write_policies

MINUTE = 60_000_000


def run_recommend(tmp_path, events, target, tolerance_target=None, granularity=MINUTE, min_runs=1,
                  by_segment=False, now=None):
    policies, _ = load_policy_dir(write_policies(tmp_path / "policies"))
    path = str(write_events(tmp_path / "events.jsonl", events))
    tt = default_tolerance_target(target) if tolerance_target is None else tolerance_target
    return recommend(policies, lambda: read_events(path), target, tt, granularity, min_runs, by_segment, now)


def attainment(completed: list[int], open_: list[int], limit: float) -> float:
    return sum(1 for e in completed if e <= limit) / (len(completed) + sum(1 for e in open_ if e > limit))


def smallest(completed, open_, target, step) -> int:
    k = 1
    while attainment(completed, open_, k * step) < target:
        k += 1
    return k * step


@pytest.mark.parametrize("seed,target,step,by_segment", [(1, 0.9, 7, False), (2, 0.8, 1, True), (3, 0.95, 15, False),
                                                        (4, 0.5, 3, True)])
def test_the_smallest_multiple_that_meets_the_target(tmp_path, seed, target, step, by_segment):
    events = generate(seed, orders=200)
    doc = run_recommend(tmp_path, events, target, granularity=step * MINUTE, min_runs=25, by_segment=by_segment)
    now = max(minute_of(e["at"]) for e in events)
    groups: dict = {}
    for r in runs_of(events, now):
        segment = r.segment if by_segment and r.node != "__order__" else None
        g = groups.setdefault((r.node, segment), {"completed": [], "open": []})
        state = r.state_at(now)
        if state.startswith("completed_"):
            g["completed"].append(r.elapsed(now))
        elif state.startswith("in_progress_"):
            g["open"].append(r.elapsed(now))
    tolerance_target = 1 - (1 - target) / 4
    assert doc["target"] == target and doc["tolerance_target"] == tolerance_target
    expected_rows, expected_skipped = [], []
    for (node, segment), g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        runs = len(g["completed"]) + len(g["open"])
        head = {"process": "p", "node": node, "segment": segment, "runs": runs}
        if runs < 25 or not g["completed"]:
            expected_skipped.append(head)
            continue
        c = smallest(g["completed"], g["open"], target, step)
        t = max(c, smallest(g["completed"], g["open"], tolerance_target, step))
        assert c == step or attainment(g["completed"], g["open"], c - step) < target  # the multiple below fails
        cur_c, cur_t, _ = LIMITS.get((node, segment or "default")) or LIMITS.get((node, "default")) or \
            LIMITS[(node, None)]
        expected_rows.append({**head,
                              "current": {"commitment_s": cur_c * 60.0, "tolerance_s": cur_t * 60.0,
                                          "attainment": attainment(g["completed"], g["open"], cur_c),
                                          "tolerance_attainment": attainment(g["completed"], g["open"], cur_t)},
                              "recommended": {"commitment_s": c * 60.0, "tolerance_s": t * 60.0,
                                              "attainment": attainment(g["completed"], g["open"], c),
                                              "tolerance_attainment": attainment(g["completed"], g["open"], t)}})
    assert expected_rows
    assert doc["rows"] == expected_rows
    assert doc["skipped"] == expected_skipped


def ev(i, etype, minute, node="b", order=None, **extra):
    e = {"event_id": f"e{i}", "order_id": order or f"o{i}", "process": "p", "type": etype,
         "at": f"2026-03-05T{minute // 60:02d}:{minute % 60:02d}:00Z", **extra}
    if etype.startswith("node_"):
        e["node"] = node
    return e


def test_open_runs_within_the_limit_and_cancelled_runs_are_left_out(tmp_path):
    events = []
    for i, minutes in enumerate((10, 20, 30, 40)):
        events += [ev(2 * i, "node_started", 60, order=f"c{i}"), ev(2 * i + 1, "node_completed", 60 + minutes, order=f"c{i}")]
    events += [ev(20, "node_started", 300 - 5, order="open-short"),  # 5 minutes at now: outcome unknown
               ev(21, "node_started", 300 - 50, order="open-long"),  # 50 minutes at now: already beyond L < 50
               ev(22, "node_started", 0, order="gone"), ev(23, "node_cancelled", 200, order="gone"),
               ev(24, "node_started", 299, node="a", order="tick"), ev(25, "node_completed", 300, node="a", order="tick")]
    doc = run_recommend(tmp_path, events, 0.8, tolerance_target=0.95)
    row = next(r for r in doc["rows"] if r["node"] == "b")
    assert row["runs"] == 6  # 4 completed + 2 open; the cancelled one is not a run here
    # L = 39m: 3 within / (4 + 1 open beyond) = 0.6; L = 40m: 4 / 5 = 0.8 -> the commitment
    assert row["recommended"]["commitment_s"] == 40 * 60.0 and row["recommended"]["attainment"] == 0.8
    # L = 49m: 4 / 5 = 0.8; L = 50m: 4 / 4 = 1.0 -> the tolerance
    assert row["recommended"]["tolerance_s"] == 50 * 60.0 and row["recommended"]["tolerance_attainment"] == 1.0
    assert row["current"] == {"commitment_s": 1800.0, "tolerance_s": 1800.0, "attainment": 0.6,
                              "tolerance_attainment": 0.6}
    assert doc["now"] == "2026-03-05T05:00:00Z"


def test_too_few_runs_or_none_completed_are_skipped_and_the_order_level_is_included(tmp_path):
    events = [ev(1, "node_started", 10, order="x"), ev(2, "node_started", 20, node="a", order="x"),
              ev(3, "node_completed", 30, node="a", order="x"), ev(4, "order_completed", 40, order="y")]
    doc = run_recommend(tmp_path, events, 0.9, min_runs=1)
    # x: b open (no completed run: skipped), a completed; the order level open only: skipped
    assert [(r["node"], r["runs"]) for r in doc["rows"]] == [("a", 1)]
    assert [(s["node"], s["runs"]) for s in doc["skipped"]] == [("__order__", 1), ("b", 1)]
    doc = run_recommend(tmp_path, events, 0.9, min_runs=2)
    assert doc["rows"] == [] and [(s["node"], s["runs"]) for s in doc["skipped"]] == [("__order__", 1), ("a", 1),
                                                                                       ("b", 1)]
    assert run_recommend(tmp_path, [], 0.9)["skipped"] == [  # policy nodes without any run are listed too
        {"process": "p", "node": n, "segment": None, "runs": 0} for n in ("__order__", "a", "b")]


def test_a_target_of_one_needs_every_run_within_the_limit(tmp_path):
    events = []
    for i, minutes in enumerate((3, 61, 17)):
        events += [ev(2 * i, "node_started", 60, order=f"c{i}"), ev(2 * i + 1, "node_completed", 60 + minutes, order=f"c{i}")]
    row = next(r for r in run_recommend(tmp_path, events, 1.0, granularity=5 * MINUTE)["rows"] if r["node"] == "b")
    assert row["recommended"]["commitment_s"] == 65 * 60.0 == row["recommended"]["tolerance_s"]
