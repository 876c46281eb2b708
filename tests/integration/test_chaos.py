"""Faults on purpose, compared with the replay of the same events: a worker killed while it drains a backlog, a
worker paused past its session timeout while another takes its partitions (a zombie), the broker paused.

Outputs are read `read_committed` (as the README tells downstream readers to): every warning and outcome of the
replay must be there, none that the replay does not have, and repeats are counted and printed.
`make test` runs each experiment once, small; `make chaos` sets SLAMON_CHAOS_SCALE=full for the full counts.
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from collections import Counter
from datetime import datetime

import pytest

from monitor.core.events import event_from_object
from monitor.core.instants import parse_instant
from monitor.core.policies import load_policy_dir
from monitor.core.replay import replay

from .live import Topics, Worker, event, free_port, now, seconds, wait_for, worker_env
from .test_live import write_policies

pytestmark = pytest.mark.integration

FULL = os.environ.get("SLAMON_CHAOS_SCALE") == "full"
BACKLOG_EVENTS = 100_000 if FULL else 20_000
KILLS = 5 if FULL else 2
ZOMBIE_RUNS = 5 if FULL else 1  # per store: 10 in all with `make chaos`
STORES = ["rocksdb://", "memory://"] if FULL else ["rocksdb://"]

POLICY = """process: p
version: 1
early_warning: 0.5
order: {commitment: 3h, tolerance: 5h, owner: desk}
nodes:
  a: {commitment: 1h, tolerance: 2h, owner: team-a}
  b: {commitment: 30m, tolerance: 45m}
"""


def backlog(tag: str, n_events: int, t0: datetime, rng: random.Random) -> list[dict]:
    """Complete orders (every run ends, then order_completed): 5 events each, times from `t0` on, so that their
    outputs follow from the events alone when `t0` lies ahead of the wall clock."""
    events = []
    for i in range(n_events // 5):
        o, t = f"{tag}-{i}", t0 + seconds(i)
        for node in ("a", "b"):
            events.append(event(o, "node_started", t, node=node))
            t += seconds(rng.choice([600, 3000, 4000, 6000, 9000]))
            events.append(event(o, "node_completed", t, node=node))
        events.append(event(o, "order_completed", t + seconds(1), node=None))
    return events


def expected_warnings(policies_dir, events: list[dict]) -> set[str]:
    """The warning ids of the project's replay of the same events (judged at the last event: every run ended)."""
    items = sorted((event_from_object(e) for e in events), key=lambda e: e.at)
    out = replay(load_policy_dir(policies_dir)[0], lambda: items, max(parse_instant(e["at"]) for e in events))
    return {w["warning_id"] for w in out["warnings"]}


def outputs(topics: Topics, tag: str) -> tuple[Counter, Counter]:
    warnings = Counter(w["warning_id"] for w in topics.records("sla.warnings") if w["order_id"].startswith(tag))
    outcomes = Counter((o["order_id"], o["node"], o["run"]) for o in topics.records("sla.outcomes")
                       if o["order_id"].startswith(tag))
    return warnings, outcomes


def caught_up(topics: Topics, group: str) -> bool:
    lag = topics.lag(group, "workflow.events")
    return lag is not None and lag == 0


@pytest.fixture
def chaos(stack, tmp_path):
    workers: list[Worker] = []

    def new_worker(prefix: str, name: str, pol, **extra: str) -> Worker:
        w = Worker(worker_env(stack, prefix, free_port(), tmp_path / f"data-{name}", SLAMON_POLICIES=str(pol),
                              **extra), tmp_path / f"{name}.log")
        workers.append(w)
        return w

    yield new_worker
    for w in workers:
        if w.proc is not None and w.proc.poll() is None:
            os.kill(w.proc.pid, signal.SIGCONT)
        w.stop()


@pytest.mark.parametrize("store", STORES)
def test_kill_9_while_draining_a_backlog_loses_nothing(stack, chaos, tmp_path, store):
    prefix = f"k{uuid.uuid4().hex[:8]}."
    pol = write_policies(tmp_path / "policies", POLICY)
    tag = f"bk{uuid.uuid4().hex[:5]}"
    events = backlog(tag, BACKLOG_EVENTS, now() + seconds(86400), random.Random(3))
    topics = Topics(stack.kafka_bootstrap, prefix)
    w = chaos(prefix, "w", pol, SLAMON_STORE=store, SLAMON_PARTITIONS="4")
    w.start()
    w.wait_ready()
    topics.produce_fast(events)
    rng = random.Random(7)
    for _ in range(KILLS):
        time.sleep(rng.uniform(2, 6))  # let it work for a while: the kill lands mid-backlog
        lag = topics.lag(prefix.rstrip("."), "workflow.events")
        w.kill()
        print(f"killed with {lag} events left")
        w.start()
        w.wait_ready()
    wait_for(lambda: caught_up(topics, prefix.rstrip(".")), 600, "the backlog to drain")
    want_w = expected_warnings(pol, events)
    want_o = len([e for e in events if e["type"] == "node_completed"]) + len(events) // 5  # + order-level runs

    def complete():
        got_w, got_o = outputs(topics, tag)
        return (got_w, got_o) if set(got_w) >= want_w and len(got_o) >= want_o else None

    got_w, got_o = wait_for(complete, 120, "every warning and outcome")
    assert set(got_w) == want_w, f"missing {len(want_w - set(got_w))}, false {len(set(got_w) - want_w)}"
    assert len(got_o) == want_o
    repeats = sum(got_w.values()) - len(got_w) + sum(got_o.values()) - len(got_o)
    print(f"{store}: {len(events)} events, {KILLS} kills: {len(want_w)} warnings and {want_o} outcomes, "
          f"0 missing, 0 false, {repeats} repeated (read_committed)")
    assert repeats == 0  # transactions: a read_committed reader sees each output once


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("run", range(ZOMBIE_RUNS))
def test_a_paused_worker_is_fenced_and_changes_nothing(stack, chaos, tmp_path, run, store):
    """Two workers; one is paused (SIGSTOP) past the session timeout while live orders cross their
    limits, its partitions move to the other, then it resumes. Live must still equal the replay, and a graceful
    restart of both afterwards must announce nothing again (a regressed table state would)."""
    from .test_live import POLICY as LIVE_POLICY
    from .test_live import TICK
    from .test_recovery import Player, replay_warnings, stream_of_orders

    prefix = f"z{uuid.uuid4().hex[:8]}."
    pol = write_policies(tmp_path / f"policies-{run}", LIVE_POLICY)
    extra = {"SLAMON_STORE": store, "SLAMON_SESSION_TIMEOUT": "6", "SLAMON_TICK_INTERVAL": str(TICK)}
    a = chaos(prefix, f"a{run}", pol, **extra).start()
    b = chaos(prefix, f"b{run}", pol, **extra).start()
    a.wait_ready()
    b.wait_ready()
    topics = Topics(stack.kafka_bootstrap, prefix)
    tag = f"zo{uuid.uuid4().hex[:5]}"
    events = stream_of_orders(tag, now() + seconds(1), 40, 0.3, random.Random(run))
    player = Player(topics, events)
    player.start()
    time.sleep(2)
    os.kill(a.proc.pid, signal.SIGSTOP)  # a zombie: alive, silent, holding buffered work
    wait_for(lambda: len(b.owned()) == 4, 60, "the other worker to take every partition")
    assert a.proc.poll() is None  # still there, paused
    time.sleep(2)
    os.kill(a.proc.pid, signal.SIGCONT)
    player.join(60)
    assert player.error is None
    last = max(datetime.fromisoformat(e["at"]) for e in events)
    judge_at = last + seconds(7)
    wait_for(lambda: now() > judge_at + seconds(3), 30, "the last crossings")
    if a.proc.poll() is not None:  # fenced: it stopped itself, as a supervisor would see; restart it
        a.start()
    for w in (a, b):
        w.wait_ready()
    replayed = replay_warnings(pol, events, judge_at, tmp_path)
    expected = {x["warning_id"] for x in replayed["warnings"]}
    open_expected = sum(r[f"in_progress_{lvl}"] for r in replayed["summary"]
                        for lvl in ("normal", "acceptable", "warning"))

    def settled():
        got = Counter(w["warning_id"] for w in topics.records("sla.warnings") if w["order_id"].startswith(tag))
        return got if set(got) >= expected else None

    got = wait_for(settled, 60, "every warning")
    assert set(got) == expected, f"false: {sorted(set(got) - expected)[:5]}"
    # a graceful restart of both announces nothing again: the changelog holds no regressed state
    before = sum(got.values())
    for w in (a, b):
        assert w.stop() == 0
    for w in (a, b):
        w.start()
    for w in (a, b):
        w.wait_ready()
    time.sleep(3 * TICK + 1)
    after = Counter(w["warning_id"] for w in topics.records("sla.warnings") if w["order_id"].startswith(tag))
    assert sum(after.values()) == before, "warnings announced again after a graceful restart"
    open_runs = sum(w.metric("sla_runs_in_progress") for w in (a, b))
    assert open_runs == open_expected, "the table's open runs differ from the replay's"
    print(f"zombie run {run}: {len(expected)} warnings, 0 missing, 0 false, {before - len(got)} repeated")
    for w in (a, b):
        w.stop()


def test_five_kills_during_a_live_run_lose_no_warning(stack, chaos, tmp_path):
    """Ticks announce most crossings here (event times are real time): the tick path and recovery under kills."""
    from .test_live import POLICY as LIVE_POLICY
    from .test_live import TICK
    from .test_recovery import Player, replay_warnings, stream_of_orders

    prefix = f"l{uuid.uuid4().hex[:8]}."
    pol = write_policies(tmp_path / "policies", LIVE_POLICY)
    w = chaos(prefix, "w", pol, SLAMON_STORE="rocksdb://", SLAMON_TICK_INTERVAL=str(TICK)).start()
    w.wait_ready()
    topics = Topics(stack.kafka_bootstrap, prefix)
    tag = f"lk{uuid.uuid4().hex[:5]}"
    events = stream_of_orders(tag, now() + seconds(1), 100, 0.3, random.Random(11))
    player = Player(topics, events)
    player.start()
    rng = random.Random(5)
    for _ in range(5):
        time.sleep(rng.uniform(1, 3))
        w.kill()
        w.start()
        w.wait_ready()
    player.join(120)
    assert player.error is None
    last = max(datetime.fromisoformat(e["at"]) for e in events)
    judge_at = last + seconds(7)
    expected = {x["warning_id"] for x in replay_warnings(pol, events, judge_at, tmp_path)["warnings"]}

    def arrived():
        got = Counter(x["warning_id"] for x in topics.records("sla.warnings") if x["order_id"].startswith(tag))
        return got if set(got) >= expected and now() > judge_at + seconds(2) else None

    got = wait_for(arrived, 90, "every warning after five kills")
    assert set(got) == expected, f"false: {sorted(set(got) - expected)[:5]}"
    print(f"5 kills during a live run: {len(expected)} warnings, 0 missing, 0 false, "
          f"{sum(got.values()) - len(got)} repeated")
    assert sum(got.values()) == len(got)
