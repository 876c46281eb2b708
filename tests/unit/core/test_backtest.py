"""Backtests (CONTRACTS.md section 9): the changed runs and crossings of a tightened limit, computed from the runs
of an independent model (tests/unit/runs_oracle.py); identical sets change nothing. Each test runs with both ways
to a backtest: two replays, and one pass for both sets split by order over 1, 2 or 3 processes."""

from __future__ import annotations

import pytest

from monitor.commands.backtest import file_by_shard
from monitor.commands.backtest import run_backtest as one_pass
from monitor.core.backtest import CHANGED_LISTED
from monitor.core.policies import load_policy_dir
from monitor.eventlog import read_events, replay_file
from monitor.reports.analyses import backtest

from ..runs_oracle import POLICY_YAML, generate, minute_of, runs_of, write_events, write_policies


@pytest.fixture(params=["two replays", 1, 2, 3])
def way(request):
    """How the backtest is made: two replays, or one pass in this many processes."""
    return request.param


def run_backtest(tmp_path, events, candidate_yaml, way, now=None):
    current, _ = load_policy_dir(write_policies(tmp_path / "current"))
    candidate, _ = load_policy_dir(write_policies(tmp_path / "candidate", candidate_yaml))
    path = str(write_events(tmp_path / "events.jsonl", events))
    if way == "two replays":
        doc, _, _ = backtest(current, candidate, lambda: read_events(path), now)
    else:
        doc = one_pass(current, candidate, lambda: read_events(path), file_by_shard(path), now, shards=way).doc
    return doc, path, current, candidate


@pytest.mark.parametrize("seed", [1, 2])
def test_identical_policy_sets_change_no_run(tmp_path, seed, way):
    events = generate(seed)
    doc, path, current, _ = run_backtest(tmp_path, events, POLICY_YAML, way)
    assert doc["changed"] == [] and all(r["changed_runs"] == 0 for r in doc["rows"])
    summary = replay_file(current, path)["summary"]
    assert [(r["process"], r["node"]) for r in doc["rows"]] == [(r["process"], r["node"]) for r in summary]
    for r, s in zip(doc["rows"], summary, strict=True):
        assert r["current"] == r["candidate"] == {k: v for k, v in s.items() if k not in ("process", "node")}
        assert r["warnings"]["current"] == r["warnings"]["candidate"]
    assert doc["now"] == replay_file(current, path)["now"]


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_tightening_one_limit_changes_exactly_the_runs_it_should(tmp_path, seed, way):
    events = generate(seed, orders=120)
    tighter = POLICY_YAML.replace("a: {commitment: 60m, tolerance: 2h, owner: ops}",
                                  "a: {commitment: 25m, tolerance: 50m, owner: ops}")
    assert tighter != POLICY_YAML
    doc, _, _, _ = run_backtest(tmp_path, events, tighter, way)
    now = max(minute_of(e["at"]) for e in events)
    expected = []
    crossings = {"current": {}, "candidate": {}}
    for r in runs_of(events, now):
        c, t, _ = r.limits()
        # gold overrides a's commitment only: it keeps 20m and inherits the node's new tolerance
        new_c, new_t = ((20 if r.segment == "gold" else 25), 50) if r.node == "a" else (c, t)
        before, after = r.state_at(now), r.state_at(now, new_c, new_t)
        if before != after:
            expected.append({"order_id": r.order_id, "node": r.node, "run": r.number, "current": before,
                             "candidate": after})
        e = r.elapsed(now)  # a crossing happens before the run ends (or before now) when the limit is exceeded
        for side, (cc, tt) in (("current", (c, t)), ("candidate", (new_c, new_t))):
            counts = crossings[side].setdefault(r.node, {"approaching": 0, "commitment_breached": 0,
                                                          "tolerance_breached": 0})
            counts["commitment_breached"] += e > cc
            counts["tolerance_breached"] += e > tt
    expected.sort(key=lambda x: (x["order_id"], x["node"], x["run"]))
    assert expected and doc["changed"] == expected
    assert {r["node"]: r["changed_runs"] for r in doc["rows"]} == \
        {node: sum(1 for x in expected if x["node"] == node) for node in ("__order__", "a", "b")}
    for row in doc["rows"]:
        assert row["warnings"] == {side: crossings[side][row["node"]] for side in ("current", "candidate")}


def test_a_node_known_to_one_side_only(tmp_path, way):
    events = [
        {"event_id": "1", "order_id": "x", "process": "p", "type": "node_started", "node": "c",
         "at": "2026-03-05T10:00:00Z"},
        {"event_id": "2", "order_id": "x", "process": "p", "type": "node_completed", "node": "c",
         "at": "2026-03-05T10:20:00Z"},
        {"event_id": "3", "order_id": "x", "process": "p", "type": "node_started", "node": "b",
         "at": "2026-03-05T10:30:00Z"},
    ]
    extra = POLICY_YAML.replace("segments:", "  c: {commitment: 10m, tolerance: 15m}\nsegments:")
    doc, _, _, _ = run_backtest(tmp_path, events, extra, way)
    rows = {r["node"]: r for r in doc["rows"]}
    assert rows["c"]["current"] is None and rows["c"]["candidate"]["completed_warning"] == 1
    assert rows["c"]["changed_runs"] == 1
    # the order-level run starts with the first run the order gets: c's on the candidate side, b's on the other
    assert {(x["node"], x["current"], x["candidate"]) for x in doc["changed"]} == {("c", None, "completed_warning")}
    assert rows["__order__"]["current"]["in_progress_normal"] == 1


def test_at_most_a_thousand_changed_runs_are_listed(tmp_path, way):
    events = []
    for i in range(CHANGED_LISTED + 7):
        events.append({"event_id": f"s{i}", "order_id": f"o{i:05d}", "process": "p", "type": "node_started",
                       "node": "b", "at": "2026-03-05T10:00:00Z"})
        events.append({"event_id": f"c{i}", "order_id": f"o{i:05d}", "process": "p", "type": "node_completed",
                       "node": "b", "at": "2026-03-05T10:20:00Z"})
    doc, _, _, _ = run_backtest(tmp_path, events, POLICY_YAML.replace("b: {commitment: 30m, tolerance: 30m}",
                                                                      "b: {commitment: 10m, tolerance: 30m}"), way)
    assert len(doc["changed"]) == CHANGED_LISTED
    assert {r["node"]: r["changed_runs"] for r in doc["rows"]}["b"] == CHANGED_LISTED + 7
    assert doc["changed"][0]["order_id"] == "o00000" and doc["changed"][-1]["order_id"] == f"o{CHANGED_LISTED - 1:05d}"
