"""Crash, restart, rebalance and backlog: nothing lost, nothing false, nothing repeated after a graceful stop."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
import uuid
from collections import Counter
from datetime import datetime

import orjson
import pytest

from .live import ROOT, Topics, Worker, event, free_port, now, seconds, utc, wait_for, worker_env
from .test_live import TICK, write_policies

pytestmark = pytest.mark.integration


def stream_of_orders(tag: str, t0: datetime, n: int, spacing: float, rng: random.Random) -> list[dict]:
    """n orders on node n (C 3s, T 6s) starting `spacing` apart: some complete early, some late, some never.
    No event within 0.3 s of a crossing instant of its run (1.5 s, 3 s, 6 s after its start)."""
    events = []
    for i in range(n):
        start = t0 + seconds(i * spacing)
        o = f"{tag}-{i}"
        events.append(event(o, "node_started", start))
        fate = rng.choice(["early", "late", "very_late", "open"])
        if fate != "open":
            d = {"early": 1.0, "late": 4.0, "very_late": 7.0}[fate]
            events.append(event(o, "node_completed", start + seconds(d)))
    return sorted(events, key=lambda e: e["at"])


class Player(threading.Thread):
    """Produces events at their `at` instants, in the background."""

    def __init__(self, topics: Topics, events: list[dict]):
        super().__init__(daemon=True)
        self.topics, self.events, self.error = topics, events, None

    def run(self) -> None:
        from aiokafka import AIOKafkaProducer

        async def play() -> None:
            p = AIOKafkaProducer(bootstrap_servers=self.topics.bootstrap, acks="all")
            await p.start()
            try:
                for e in self.events:
                    delay = (datetime.fromisoformat(e["at"]) - now()).total_seconds()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await p.send_and_wait(self.topics.name("workflow.events"), value=orjson.dumps(e),
                                          key=e["order_id"].encode())
            finally:
                await p.stop()

        try:
            asyncio.run(play())
        except Exception as exc:  # reported by the test
            self.error = exc


def replay_warnings(policies, events, judge_at, tmp_path) -> dict:
    path = tmp_path / f"events-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "replay", "--policies", str(policies), "--events",
                        str(path), "--now", utc(judge_at), "--json"], cwd=ROOT, capture_output=True)
    assert r.returncode == 0, r.stderr
    return orjson.loads(r.stdout)


@pytest.fixture
def setup(stack, tmp_path):
    prefix = f"r{uuid.uuid4().hex[:8]}."
    pol = write_policies(tmp_path / "policies")
    workers: list[Worker] = []

    def new_worker(name: str, **extra: str) -> Worker:
        w = Worker(worker_env(stack, prefix, free_port(), tmp_path / f"data-{name}", SLAMON_POLICIES=str(pol),
                              SLAMON_TICK_INTERVAL=str(TICK), **extra), tmp_path / f"{name}.log")
        workers.append(w)
        return w

    yield Topics(stack.kafka_bootstrap, prefix), pol, new_worker
    for w in workers:
        w.stop()


def warnings_by_id(topics: Topics, tag: str) -> Counter:
    return Counter(w["warning_id"] for w in topics.records("sla.warnings") if w["order_id"].startswith(tag))


@pytest.mark.parametrize("fast_fetch", ["1", "0"])  # 0: Faust's own loop, the agent's take_events, serial commits
def test_kill_9_mid_stream_loses_no_warning_and_graceful_restart_repeats_none(setup, tmp_path, fast_fetch):
    topics, pol, new_worker = setup
    w = new_worker("a", SLAMON_FAST_FETCH=fast_fetch).start()
    w.wait_ready()
    tag = f"crash{uuid.uuid4().hex[:5]}"
    events = stream_of_orders(tag, now() + seconds(1), 24, 0.4, random.Random(1))
    player = Player(topics, events)
    player.start()
    wait_for(lambda: w.metric("sla_crossings_total") > 0, 30, "first crossings before the crash")
    w.kill()  # SIGKILL mid-stream
    w.start()
    w.wait_ready()
    player.join(60)
    assert player.error is None
    last = max(datetime.fromisoformat(e["at"]) for e in events)
    judge_at = last + seconds(7)
    expected = {x["warning_id"]: x for x in replay_warnings(pol, events, judge_at, tmp_path)["warnings"]}
    assert len(expected) > 20

    def all_arrived():
        got = warnings_by_id(topics, tag)
        return got if set(expected) <= set(got) and now() > judge_at else None

    got = wait_for(all_arrived, 60, "every warning after the crash")
    assert set(got) == set(expected)  # none lost, none false (repeats after a crash are allowed)
    live = {x["warning_id"]: x for x in topics.records("sla.warnings") if x["order_id"].startswith(tag)}
    assert all(live[k]["crossed_at"] == v["crossed_at"] and live[k]["state"] == v["state"] for k, v in expected.items())

    # graceful restart: nothing emitted before it is emitted again; open runs still cross afterwards
    before = warnings_by_id(topics, tag)
    tag2 = f"grace{uuid.uuid4().hex[:5]}"
    t0 = now() + seconds(0.5)
    topics.produce([event(f"{tag2}-0", "node_started", t0)])
    wait_for(lambda: warnings_by_id(topics, tag2).get(f"{tag2}-0:n:1:approaching"), 20,
             "the new run's first crossing (it is applied and stored)")
    assert w.stop() == 0
    w.start()
    w.wait_ready()
    wait_for(lambda: warnings_by_id(topics, tag2).get(f"{tag2}-0:n:1:tolerance_breached"), 30,
             "the open run's tolerance breach after the restart")
    after = warnings_by_id(topics, tag)
    assert after == before, "a graceful restart re-emitted warnings"
    grace = warnings_by_id(topics, tag2)
    assert {k for k in grace if ":n:" in k} == {f"{tag2}-0:n:1:{k}" for k in
                                              ("approaching", "commitment_breached", "tolerance_breached")}
    assert set(grace.values()) == {1}  # node and order-level warnings, each exactly once


def test_backlog_after_the_commitment_announces_no_false_breach(setup, tmp_path):
    topics, pol, new_worker = setup
    w = new_worker("b").start()
    w.wait_ready()
    assert w.stop() == 0
    tag = f"backlog{uuid.uuid4().hex[:5]}"
    t0 = now()
    events = []
    for i in range(10):
        o = f"{tag}-{i}"
        events += [event(o, "node_started", t0 + seconds(i * 0.1)), event(o, "node_completed", t0 + seconds(1 + i * 0.1))]
    events.append(event(f"{tag}-late", "node_started", t0))  # really breached: it must be announced
    Player(topics, sorted(events, key=lambda e: e["at"])).run()
    wait_for(lambda: now() > t0 + seconds(6.5), 10, "the commitments and tolerances to pass")
    w.start()
    w.wait_ready()
    wait_for(lambda: warnings_by_id(topics, tag).get(f"{tag}-late:n:1:tolerance_breached"), 30, "the true breach")

    def outcomes() -> list[dict]:
        return [x for x in topics.records("sla.outcomes") if x["order_id"].startswith(tag)]

    # each partition commits in transactions of its own: the other partitions' outcomes may come a little later
    # than the late order's warning; any warning of an order is committed with or before its outcome
    wait_for(lambda: len(outcomes()) >= 10, 30, "the ten outcomes")
    assert Counter(x["state"] for x in outcomes()) == {"completed_normal": 10}
    node_warnings = {k for k in warnings_by_id(topics, tag) if ":n:" in k}  # orders stay open: __order__ crosses
    assert node_warnings == {f"{tag}-late:n:1:commitment_breached", f"{tag}-late:n:1:approaching",
                             f"{tag}-late:n:1:tolerance_breached"}


def test_second_worker_joins_then_first_leaves_nothing_lost_and_gauges_add_up(setup, tmp_path):
    topics, pol, new_worker = setup
    w1 = new_worker("one").start()
    w1.wait_ready()
    tag = f"rebal{uuid.uuid4().hex[:5]}"
    events = stream_of_orders(tag, now() + seconds(1), 30, 0.3, random.Random(2))
    player = Player(topics, events)
    player.start()
    wait_for(lambda: w1.metric("sla_events_total") > 5, 30, "events flowing")
    w2 = new_worker("two").start()
    w2.wait_ready()
    player.join(60)
    assert player.error is None
    last = max(datetime.fromisoformat(e["at"]) for e in events)
    judge_at = last + seconds(7)
    result = replay_warnings(pol, events, judge_at, tmp_path)
    expected = {x["warning_id"] for x in result["warnings"]}
    open_runs = sum(r["in_progress_normal"] + r["in_progress_acceptable"] + r["in_progress_warning"]
                    for r in result["summary"] if r["node"] == "n")
    assert open_runs > 0

    def ready_both() -> bool:
        return w1.get("/readyz")[0] == 200 and w2.get("/readyz")[0] == 200

    def gauge_total(ws):
        return sum(w.metric("sla_runs_in_progress", {"process": "p", "node": "n"}) for w in ws)

    def levels(w):
        return {lvl: w.metric("sla_runs_in_progress", {"process": "p", "node": "n", "level": lvl})
                for lvl in ("normal", "acceptable", "warning")}

    try:
        wait_for(lambda: ready_both() and now() > judge_at and gauge_total([w1, w2]) == open_runs, 60,
                 f"gauges of both workers to add up to {open_runs} open runs")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: worker one {levels(w1)}, worker two {levels(w2)}, "
                             f"outcomes {len([x for x in topics.records('sla.outcomes') if x['order_id'].startswith(tag)])}"
                             ) from None
    p1 = set(orjson.loads(w1.get("/readyz")[1])["partitions"])
    p2 = set(orjson.loads(w2.get("/readyz")[1])["partitions"])
    assert p1 and p2 and not p1 & p2  # the partitions were shared
    assert w1.stop() == 0
    w2.wait_ready()
    wait_for(lambda: set(orjson.loads(w2.get("/readyz")[1])["partitions"]) == p1 | p2 and gauge_total([w2]) == open_runs,
             60, "the second worker to own everything with the right gauges")
    assert wait_for(lambda: warnings_by_id(topics, tag).keys() >= expected, 60, "every warning") is not None
    assert set(warnings_by_id(topics, tag)) == expected
    assert gauge_total([w2]) == open_runs
    levels = {lvl: w2.metric("sla_runs_in_progress", {"process": "p", "node": "n", "level": lvl})
              for lvl in ("normal", "acceptable", "warning")}
    assert levels == {"normal": 0, "acceptable": 0, "warning": open_runs}  # every open run is past 6 s


def test_kill_9_before_the_first_offset_commit_still_announces_everything(setup, tmp_path):
    """Regression: Faust reads stream partitions during table recovery and relies on seek_to_committed() to
    rewind them, which does nothing for a partition without a committed offset; the worker rewinds those."""
    topics, pol, new_worker = setup
    w = new_worker("k").start()
    w.wait_ready()
    tag = f"early{uuid.uuid4().hex[:5]}"
    t0 = now()
    topics.produce([event(f"{tag}-{i}", "node_started", t0) for i in range(12)])
    wait_for(lambda: w.metric("sla_events_total", {"type": "node_started"}) >= 12, 10, "the events applied")
    w.kill()  # well within the first commit interval: no offset of workflow.events committed yet
    w.start()
    w.wait_ready()
    got = wait_for(lambda: {k for k in warnings_by_id(topics, tag) if k.endswith(":n:1:commitment_breached")}
                   if len([k for k in warnings_by_id(topics, tag) if k.endswith(":n:1:commitment_breached")]) == 12
                   else None, 30, "every commitment breach")
    assert len(got) == 12
    assert w.metric("sla_invalid_events_total", {"reason": "duplicate_event"}) == 0  # redelivered, not duplicates


def assignments(w: Worker) -> list[list[int]]:
    """The partitions of each assignment the worker logged, in order."""
    return [orjson.loads(line)["partitions"] for line in w.log_path.read_text(errors="replace").splitlines()
            if '"partitions assigned"' in line]


def test_a_static_member_restarted_within_the_session_timeout_keeps_its_partitions(setup, tmp_path):
    # SLAMON_GROUP_INSTANCE_ID (the Helm chart: the pod name): a rolling restart does not move partitions
    topics, pol, new_worker = setup
    static = {"SLAMON_SESSION_TIMEOUT": "45"}
    w1 = new_worker("one", SLAMON_GROUP_INSTANCE_ID="one", **static).start()
    w1.wait_ready()
    w2 = new_worker("two", SLAMON_GROUP_INSTANCE_ID="two", **static).start()
    w2.wait_ready()
    wait_for(lambda: w1.owned() and w2.owned() and len(w1.owned()) + len(w2.owned()) == 4, 90,
             "both workers to own partitions")
    p1, p2 = set(w1.owned()), set(w2.owned())
    seen_by_one = len(assignments(w1))
    assert w2.stop() == 0
    w2.start()  # the same instance id, well within the session timeout
    w2.wait_ready()
    wait_for(lambda: set(w2.owned()) == p2, 60, "the restarted worker to own its partitions again")
    assert set(w1.owned()) == p1
    assert len(assignments(w1)) == seen_by_one, "the other worker went through a rebalance"
    assert assignments(w2)[-1] == sorted(p2)
    # and the restarted worker processes its partitions' events
    tag = f"static{uuid.uuid4().hex[:5]}"
    events = [event(f"{tag}-{i}", "node_started", now()) for i in range(20)]
    topics.produce(events)
    wait_for(lambda: w1.metric("sla_events_total") + w2.metric("sla_events_total") >= 20, 60,
             "every event applied")


def owner_of_every_partition(w: Worker) -> Worker:
    """Start `w` alone and wait until it owns the four partitions."""
    w.start()
    w.wait_ready()
    wait_for(lambda: len(w.owned()) == 4, 90, "the worker to own every partition")
    return w


def test_a_static_member_whose_instance_id_another_worker_took_exits_instead_of_taking_it_back(setup, tmp_path):
    # Two workers with one SLAMON_GROUP_INSTANCE_ID (a misconfiguration, or a paused pod resumed after its
    # replacement started): the broker fences the earlier member. aiokafka's own heartbeats do not name the instance
    # id, so the broker only said "unknown member", the earlier worker rejoined and took the id back, and the two
    # took it from each other every heartbeat. The earlier one must end, with status 1, saying why.
    topics, pol, new_worker = setup
    static = {"SLAMON_SESSION_TIMEOUT": "45", "SLAMON_GROUP_INSTANCE_ID": "same-pod"}
    first = owner_of_every_partition(new_worker("first", **static))
    second = new_worker("second", **static).start()
    try:
        assert first.proc.wait(60) == 1
        assert "fenced: another worker joined with group instance id same-pod" in first.tail()
    finally:
        second.stop()


def test_a_static_member_back_with_another_web_address_says_why_it_cannot_join(setup, tmp_path):
    # The group hands a static member that comes back within the session timeout the assignment of its previous
    # session; Faust refuses one made for another web address (its assignor asserts the URL). The worker ended with
    # "the consumer group cannot be joined" and an empty AssertionError, which did not say why.
    topics, pol, new_worker = setup
    static = {"SLAMON_SESSION_TIMEOUT": "45", "SLAMON_GROUP_INSTANCE_ID": "moved-pod"}
    first = owner_of_every_partition(new_worker("before", **static))
    first.kill()
    again = new_worker("after", **static).start()  # another SLAMON_WEB_PORT
    assert again.proc.wait(90) == 1
    tail = again.tail()
    assert "the consumer group cannot be joined" in tail and "web address" in tail and "moved-pod" in tail
