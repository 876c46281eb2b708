"""The wiring of the analyses: the backtest's two replays side by side in two processes, or one after the other,
give the same document; a failure in either is the caller's exception."""

from __future__ import annotations

import os

import pytest

from monitor.core.policies import load_policy_dir
from monitor.eventlog import EventFileError, read_events
from monitor.reports.analyses import Forked, backtest

from ..runs_oracle import POLICY_YAML, generate, write_events, write_policies


def test_the_forked_and_the_sequential_backtest_agree(tmp_path):
    current, _ = load_policy_dir(write_policies(tmp_path / "current"))
    candidate, _ = load_policy_dir(write_policies(tmp_path / "candidate", POLICY_YAML.replace("60m", "10m")))
    path = str(write_events(tmp_path / "events.jsonl", generate(31, orders=100)))
    forked, cur, cand = backtest(current, candidate, lambda: read_events(path), parallel=True)
    plain, _, _ = backtest(current, candidate, lambda: read_events(path), parallel=False)
    assert forked == plain and forked["changed"]
    assert cand.sink.open == {} and cur.first_at == cand.first_at and cur.now == cand.now


def test_a_damaged_file_fails_the_backtest_and_stops_the_child(tmp_path):
    policies, _ = load_policy_dir(write_policies(tmp_path / "p"))
    damaged = tmp_path / "events.jsonl.gz"
    damaged.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(EventFileError):
        backtest(policies, policies, lambda: read_events(str(damaged)))


def test_the_child_s_result_and_exception_reach_the_parent():
    assert Forked(lambda: {"pid": os.getpid()}).result()["pid"] != os.getpid()
    with pytest.raises(ZeroDivisionError):
        Forked(lambda: 1 / 0).result()
    with pytest.raises(RuntimeError, match="ended without a result"):
        Forked(lambda: os._exit(3)).result()


def test_events_out_of_time_order_give_the_same_analyses(tmp_path):
    import random

    from monitor.reports.analyses import period_report, recommend

    policies, _ = load_policy_dir(write_policies(tmp_path / "p"))
    events = generate(33, orders=80)
    orders = sorted({e["order_id"] for e in events})
    random.Random(1).shuffle(orders)
    rank = {o: i for i, o in enumerate(orders)}
    # order by order, in a random order of orders: out of time order, each order's own events as they were
    mixed_events = sorted(events, key=lambda e: rank[e["order_id"]])
    assert mixed_events != events
    ordered = str(write_events(tmp_path / "ordered.jsonl", events))
    mixed = str(write_events(tmp_path / "mixed.jsonl", mixed_events))
    a, _ = period_report(policies, lambda: read_events(ordered), "day", "Europe/Berlin")
    b, _ = period_report(policies, lambda: read_events(mixed), "day", "Europe/Berlin")
    assert a == b and len(a["periods"]) >= 5
    assert recommend(policies, lambda: read_events(ordered), 0.8, 0.95, 60_000_000, 5) == \
        recommend(policies, lambda: read_events(mixed), 0.8, 0.95, 60_000_000, 5)
