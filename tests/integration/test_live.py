"""The live monitor against the real broker: worker subprocesses, events produced as they happen."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime

import orjson
import pytest

from .live import ROOT, Topics, Worker, event, free_port, now, seconds, utc, wait_for, worker_env

pytestmark = pytest.mark.integration

TICK = 0.5
POLICY = """process: p
version: 1
early_warning: 0.5
order: {commitment: 5s, tolerance: 8s, owner: desk}
nodes:
  a: {commitment: 2s, tolerance: 4s, owner: team-a}
  b: {commitment: 1.5s, tolerance: 1.5s}
  n: {commitment: 3s, tolerance: 6s, owner: team-n}
"""


def write_policies(path, text=POLICY):
    path.mkdir(parents=True, exist_ok=True)
    (path / "p.yaml").write_text(text)
    return path


def apply_policies(stack, prefix, directory):
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "policy", "apply", str(directory), "--bootstrap",
                        stack.kafka_bootstrap, "--prefix", prefix], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def shared(stack, tmp_path_factory):
    """One worker for the tests that do not stop it."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    d = tmp_path_factory.mktemp("shared")
    pol = write_policies(d / "policies")
    w = Worker(worker_env(stack, prefix, free_port(), d / "data", SLAMON_POLICIES=str(pol),
                          SLAMON_TICK_INTERVAL=str(TICK)), d / "worker.log").start()
    try:
        w.wait_ready()
        yield w, Topics(stack.kafka_bootstrap, prefix), pol
    finally:
        assert w.stop() == 0, w.tail()


def warnings_of(topics, order_prefix):
    return [w for w in topics.records("sla.warnings") if w["order_id"].startswith(order_prefix)]


def test_nothing_arrives_breach_within_commitment_plus_two_ticks(shared):
    w, topics, _ = shared
    order = f"quiet-{uuid.uuid4().hex[:6]}"
    start = now()
    topics.produce([event(order, "node_started", start)])
    found = wait_for(lambda: [x for x in warnings_of(topics, order) if x["kind"] == "commitment_breached"],
                     3 + 2 * TICK + 10, "commitment_breached")
    [breach] = found
    assert breach["crossed_at"] == utc(start + seconds(3))
    detected = datetime.fromisoformat(breach["detected_at"])
    assert detected - start <= seconds(3 + 2 * TICK), (detected - start)
    assert breach["state"] == "in_progress_acceptable" and breach["owner"] == "team-n"
    assert w.metric("sla_crossings_total", {"process": "p", "node": "n", "kind": "commitment_breached"}) >= 1


def bad_input(tag: str) -> list[tuple[bytes, bytes, str | None]]:
    """(key, value, reason) of one kind of bad input each; None: a valid event the next ones refer to. Keys are
    the events' order ids (a key that is not is itself malformed: the last case)."""

    def ev(event_id, order, **fields):
        base = {"event_id": f"{event_id}-{tag}", "order_id": f"{order}-{tag}", "process": "p",
                "type": "node_started", "node": "n", "at": "2026-11-21T08:00:00Z"}
        return f"{order}-{tag}".encode(), orjson.dumps({**base, **fields})

    return [
        (f"bad-0-{tag}".encode(), b"not json", "malformed"),
        (f"bad-1-{tag}".encode(), b"\xff\xfe\x00 binary", "malformed"),
        (*ev("x", "bad-2", at="2026-11-21T08:00:00"), "malformed"),
        (*ev("u1", "bad-3", process="nope"), "unknown_process"),
        (*ev("u2", "bad-4", node="zz"), "unknown_node"),
        (*ev("u3", "bad-5", type="node_resumed"), "invalid_transition"),
        (*ev("u4", "bad-6"), None),
        (*ev("u4", "bad-6"), "duplicate_event"),
        (*ev("u5", "bad-6", type="node_completed", at="2026-11-21T07:00:00Z"), "out_of_order"),
        (b"not-the-order", ev("u6", "bad-7")[1], "malformed"),
    ]


def test_bad_input_goes_to_dead_letters_with_original_bytes_and_is_counted(shared):
    w, topics, _ = shared
    tag = uuid.uuid4().hex[:6]
    bad = bad_input(tag)
    before = {r: w.metric("sla_invalid_events_total", {"reason": r}) for r in {r for _, _, r in bad if r}}
    keys = [k for k, _, _ in bad]
    topics.produce([raw for _, raw, _ in bad], keys=keys)
    wanted = Counter(r for _, _, r in bad if r)

    def arrived():
        got = [(k, orjson.loads(v)) for k, v in topics.read("sla.deadletter") if k in set(keys)]
        return got if len(got) >= sum(wanted.values()) else None

    got = wait_for(arrived, 30, "dead letters")
    assert Counter(d["reason"] for _, d in got) == wanted
    for _, d in got:
        original = __import__("base64").b64decode(d["raw"]) if d["raw_encoding"] == "base64" else d["raw"].encode()
        assert original in [raw for _, raw, _ in bad]
        assert d["topic"].endswith("workflow.events") and d["detail"]
    for reason, n in wanted.items():
        assert w.metric("sla_invalid_events_total", {"reason": reason}) - before[reason] == n
    assert w.get("/readyz")[0] == 200  # the agent keeps running
    # and still monitors: a fresh order after the bad input is applied
    order = f"after-bad-{tag}"
    topics.produce([event(order, "node_started", now())])
    wait_for(lambda: w.metric("sla_runs_started_total", {"process": "p", "node": "n"}) > 0, 10, "run started")


def test_an_event_near_the_size_limit_is_dead_lettered_cut_and_the_partition_goes_on(shared):
    # its dead letter in base64 would be a third larger than the broker takes: the transaction failed until the
    # commit deadline ended the worker, and every restart met the same event again
    w, topics, _ = shared
    order = f"after-huge-{uuid.uuid4().hex[:6]}"
    key = order.encode()  # the same partition as the event after it
    raw = b"\xff" * 1_000_000
    started = {"process": "p", "type": "node_started"}
    before = w.metric("sla_events_total", started)
    topics.produce([raw], keys=[key])
    topics.produce([event(order, "node_started", now())])

    def letter():
        return next((orjson.loads(v) for k, v in topics.read("sla.deadletter") if k == key), None)

    d = wait_for(letter, 30, "the dead letter")
    assert d["reason"] == "malformed" and d["raw_truncated"] is True and d["raw_bytes"] == len(raw)
    assert raw.startswith(__import__("base64").b64decode(d["raw"]))
    wait_for(lambda: w.metric("sla_events_total", started) > before, 30, "the next event of the partition applied")
    assert w.proc.poll() is None


def test_policy_change_applies_to_new_runs_only(shared, stack):
    w, topics, pol = shared
    tag = uuid.uuid4().hex[:6]
    t0 = now()
    topics.produce([event(f"old-{tag}", "node_started", t0)])
    wait_for(lambda: w.metric("sla_events_total", {"process": "p", "type": "node_started"}) > 0, 10, "event applied")
    changed = write_policies(pol.parent / "policies-v2", POLICY.replace("version: 1", "version: 2")
                             .replace("n: {commitment: 3s, tolerance: 6s", "n: {commitment: 1s, tolerance: 2s"))
    apply_policies(stack, topics.prefix, changed)
    wait_for(lambda: orjson.loads(w.get("/readyz")[1]).get("policy_versions", {}).get("p") == 2, 20,
             "the worker to follow the new policy version")
    t1 = now()
    topics.produce([event(f"new-{tag}", "node_started", t1)])
    got = wait_for(lambda: {x["order_id"]: x for x in warnings_of(topics, "") if x["kind"] == "commitment_breached"
                            and x["order_id"] in (f"old-{tag}", f"new-{tag}")} if len(
        [x for x in warnings_of(topics, "") if x["kind"] == "commitment_breached"
         and x["order_id"] in (f"old-{tag}", f"new-{tag}")]) == 2 else None, 20, "both breaches")
    assert got[f"new-{tag}"]["policy_version"] == 2 and got[f"new-{tag}"]["commitment_s"] == 1.0
    assert got[f"old-{tag}"]["policy_version"] == 1 and got[f"old-{tag}"]["commitment_s"] == 3.0
    apply_policies(stack, topics.prefix, pol)
    wait_for(lambda: orjson.loads(w.get("/readyz")[1]).get("policy_versions", {}).get("p") == 1, 20,
             "the worker to follow version 1 again")


def test_an_unusable_message_on_sla_policies_changes_nothing_and_the_next_one_applies(shared, stack):
    # one rejected policy message once stopped every worker, and every worker started later (it stays in the
    # compacted topic)
    import asyncio

    from aiokafka import AIOKafkaProducer

    w, topics, pol = shared

    async def publish(messages):
        p = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
        await p.start()
        try:
            for key, value in messages:
                await p.send_and_wait(topics.name("sla.policies"), value=value, key=key)
        finally:
            await p.stop()

    bad = orjson.dumps({"process": "p", "document": {"process": "p", "nodes": {"n": {"commitment": "2h",
                                                                                     "tolerance": "1h"}}}})
    asyncio.run(publish([(b"p", b"\xff not json"), (b"p", bad), (b"\xfe", b"[1]"), (b"q", b"null")]))
    time.sleep(2 * TICK)
    assert w.proc.poll() is None and w.get("/readyz")[0] == 200
    assert orjson.loads(w.get("/readyz")[1])["policy_versions"] == {"p": 1}
    changed = write_policies(pol.parent / "policies-after-bad", POLICY.replace("version: 1", "version: 3"))
    apply_policies(stack, topics.prefix, changed)
    wait_for(lambda: orjson.loads(w.get("/readyz")[1]).get("policy_versions", {}).get("p") == 3, 20,
             "the next good message to apply")
    apply_policies(stack, topics.prefix, pol)
    wait_for(lambda: orjson.loads(w.get("/readyz")[1]).get("policy_versions", {}).get("p") == 1, 20, "version 1")


def test_a_limit_of_a_thousand_working_days_is_applied_not_an_internal_error(shared, stack):
    # 1000d on a 40-hour week lies about 24 years ahead: a calendar scan with a horizon once crashed here
    w, topics, pol = shared
    both = write_policies(pol.parent / "policies-long", POLICY)
    (both / "long.yaml").write_text("process: long\ncalendar: biz\nnodes:\n  n: {commitment: 1000d, tolerance: 1200d}\n")
    (both / "calendars.yaml").write_text("calendars:\n  biz:\n    timezone: Europe/Berlin\n    hours:\n"
                                         + "".join(f"      {d}: ['09:00-17:00']\n" for d in ("mon", "tue", "wed", "thu", "fri")))
    apply_policies(stack, topics.prefix, both)
    wait_for(lambda: "long" in orjson.loads(w.get("/readyz")[1]).get("policy_versions", {}), 20, "the new policy")
    order = f"long-{uuid.uuid4().hex[:6]}"
    topics.produce([event(order, "node_started", now(), process="long")])
    wait_for(lambda: w.metric("sla_runs_started_total", {"process": "long", "node": "n"}) >= 1, 20, "the run started")
    assert w.metric("sla_invalid_events_total", {"reason": "internal_error"}) == 0
    apply_policies(stack, topics.prefix, pol)


# ---------------------------------------------------------------- live equals replay


def scenario(tag: str, t0: datetime, rng: random.Random) -> list[dict]:
    """Orders played in real time; no event within 0.3 s of one of its runs' crossing instants."""
    events = []
    for i in range(10):
        o = f"{tag}-{i}"
        t = t0 + seconds(rng.choice([0.0, 0.4, 0.8, 1.2]))
        start = t
        events.append(event(o, "node_started", t, node="a", segment=rng.choice(["default", "gold"]),
                            attrs={"i": i}))
        t += seconds(rng.choice([0.5, 1.5, 2.6, 3.4, 4.6, 5.5]))
        events.append(event(o, rng.choice(["node_completed"] * 4 + ["node_cancelled"]), t, node="a"))
        if i % 3 == 0:
            continue  # order and node a left as they are: the order-level run stays open
        events.append(event(o, "node_started", t, node="b"))
        if i % 4 == 1:
            t += seconds(0.5)
            events.append(event(o, "node_paused", t, node="b"))
            t += seconds(1.0)
            events.append(event(o, "node_resumed", t, node="b"))
            t += seconds(rng.choice([0.5, 1.6]))  # elapsed 1.0 or 2.1 against 1.5
        else:
            t += seconds(rng.choice([0.4, 1.1, 2.2]))
        events.append(event(o, "node_completed", t, node="b"))
        end = t + seconds(0.1)
        total = (end - start).total_seconds()
        if all(abs(total - x) > 0.3 for x in (2.5, 5, 8)):
            events.append(event(o, rng.choice(["order_completed", "order_cancelled"]), end, node=None))
    return sorted(events, key=lambda e: e["at"])


def play(topics, events: list[dict]) -> None:
    """Produce each event when it happens (at its `at`)."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def go():
        p = AIOKafkaProducer(bootstrap_servers=topics.bootstrap, acks="all")
        await p.start()
        try:
            for e in events:
                delay = (datetime.fromisoformat(e["at"]) - now()).total_seconds()
                if delay > 0:
                    await asyncio.sleep(delay)
                await p.send_and_wait(topics.name("workflow.events"), value=orjson.dumps(e), key=e["order_id"].encode())
        finally:
            await p.stop()

    asyncio.run(go())


def replay_when_due(events: list[dict], policies, judge_at: datetime, tmp_path) -> dict:
    """Once the live worker has had two ticks past `judge_at`: `slamon replay --json` of the events, judged then."""
    wait_for(lambda: now() > judge_at + seconds(2 * TICK + 1), 30, "the last crossings")
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "replay", "--policies", str(policies), "--events",
                        str(path), "--now", utc(judge_at), "--json"], cwd=ROOT, capture_output=True)
    assert r.returncode == 0, r.stderr
    return orjson.loads(r.stdout)


def test_live_equals_replay(shared, tmp_path):
    w, topics, pol = shared
    tag = f"lr{uuid.uuid4().hex[:6]}"
    events = scenario(tag, now() + seconds(1), random.Random(5))
    play(topics, events)
    last = max(datetime.fromisoformat(e["at"]) for e in events)
    judge_at = last + seconds(9)  # after every open run has crossed its last limit
    expected = replay_when_due(events, pol, judge_at, tmp_path)
    live = warnings_of(topics, tag)
    key = lambda x: (x["warning_id"], x["crossed_at"], x["state"], x["elapsed_s"], x["policy_version"])  # noqa: E731
    assert sorted(map(key, live)) == sorted(map(key, expected["warnings"]))
    assert len(expected["warnings"]) >= 10
    assert {x["kind"] for x in live} >= {"approaching", "commitment_breached", "tolerance_breached", "resolved"}
    outcomes = [x for x in topics.records("sla.outcomes") if x["order_id"].startswith(tag)]
    tally = Counter((x["node"], x["state"]) for x in outcomes)
    for row in expected["summary"]:
        for state in ("completed_normal", "completed_acceptable", "completed_warning", "cancelled"):
            assert tally[(row["node"], state)] == row[state], (row["node"], state)
        done = sorted(x["elapsed_s"] for x in outcomes if x["node"] == row["node"] and x["state"] != "cancelled")
        assert len(done) == row["duration_s"]["count"]
        if done:
            assert (done[0], done[-1]) == (row["duration_s"]["min"], row["duration_s"]["max"])


# ---------------------------------------------------------------- live equals replay: section 12 and the new rule

RICH = """process: r
version: 1
early_warning: [0.25, 0.5, 0.75]
order: {commitment: 6s, tolerance: 9s}
nodes:
  a: {commitment: 2s, tolerance: 4s, calendar: day-a}
  b: {commitment: 3s, tolerance: 5s}
  c: {commitment: 2s, tolerance: 2s}
segments:
  hot:
    match: {attrs.tier: "1"}
    calendar: day-seg
    a: {commitment: 1s, tolerance: 3s}
    b: {calendar: day-segnode}
  frozen:
    match: {segment: [ice]}
    calendar: elsewhen
statuses:
  Open: a
  Work: b
  Hold: {pause: b}
  Check: c
  Done: {end: completed}
  Drop: {end: cancelled}
"""


def rich_calendars(today: datetime) -> str:
    """Calendars open all day (each in its own zone), and `elsewhen`, closed on today's weekday (UTC)."""
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    all_day = "{" + ", ".join(f'{d}: ["00:00-24:00"]' for d in days) + "}"
    other_days = "{" + ", ".join(f'{d}: ["00:00-24:00"]' for i, d in enumerate(days) if i != today.weekday()) + "}"
    zones = {"day-a": "Europe/Paris", "day-seg": "Asia/Tokyo", "day-segnode": "America/Chicago"}
    return "calendars:\n" + "".join(f"  {name}:\n    timezone: {zone}\n    hours: {all_day}\n"
                                    for name, zone in zones.items()) + \
        f"  elsewhen:\n    timezone: UTC\n    hours: {other_days}\n"


def rich_scenario(tag: str, t0: datetime) -> list[dict]:
    """Orders of process r, timed by hand so that no event lies within 0.3 s of a crossing of its order's open
    runs (every threshold, breach and the order-level run's): graded warnings, segments by match, calendars at
    every level, statuses (start, complete, pause, resume, end, invalid ones) mixed with node events, and
    order_completed with an open run."""
    def e(order, etype, s, node=None, **extra):
        return event(f"{tag}-{order}", etype, t0 + seconds(s), node=node, process="r",
                     eid=f"{tag}-{order}-{s}-{etype}", **extra)

    def status(order, name, s, **extra):
        return e(order, "status_changed", s, status=name, **extra)

    hot = {"tier": 1}
    return sorted([
        # 1: segment hot by match (calendars day-seg; b: day-segnode); completed with b open (2.0 of 3s used)
        e(1, "node_started", 0.0, "a", attrs=hot), e(1, "node_completed", 2.0, "a"),
        e(1, "node_started", 2.0, "b", attrs=hot), e(1, "order_completed", 3.9),
        # 2: statuses only: a -> b, paused and resumed (the same run), -> c, Done while c breached
        status(2, "Open", 0.5), status(2, "Work", 2.9), status(2, "Hold", 4.0), status(2, "Work", 5.5),
        status(2, "Check", 8.0), status(2, "Done", 10.4),
        # 3: segment frozen (calendar closed today): nothing crosses; a pause without a status run is invalid
        e(3, "node_started", 1.0, "a", segment="ice"), status(3, "Hold", 1.5),
        # 4: a status for b, opened by node_started, is invalid; then a status run of a beside it; cancelled
        e(4, "node_started", 0.2, "b"), status(4, "Work", 1.3), status(4, "Open", 2.1), e(4, "order_cancelled", 5.6),
        # 5: a `node` on status_changed is ignored; an unmapped status is unknown_node; left open
        status(5, "Check", 0.3, node="zzz"), status(5, "Nope", 1.0),
        # 6: process p has no statuses: unknown_node
        {**status(6, "Open", 0.4), "process": "p"},
    ], key=lambda x: x["at"])


def test_live_equals_replay_with_thresholds_segments_calendars_and_statuses(shared, stack, tmp_path):
    w, topics, pol = shared
    tag = f"lx{uuid.uuid4().hex[:6]}"
    start = now() + seconds(3)
    rich = write_policies(tmp_path / "rich", POLICY)
    (rich / "r.yaml").write_text(RICH)
    (rich / "calendars.yaml").write_text(rich_calendars(start))
    apply_policies(stack, topics.prefix, rich)
    wait_for(lambda: "r" in orjson.loads(w.get("/readyz")[1]).get("policy_versions", {}), 20, "policy r")
    events = rich_scenario(tag, max(start, now() + seconds(1)))
    play(topics, events)
    judge_at = max(datetime.fromisoformat(e["at"]) for e in events) + seconds(2)  # order 5's run crossed all by then
    expected = replay_when_due(events, rich, judge_at, tmp_path)
    live = warnings_of(topics, tag)
    key = lambda x: (x["warning_id"], x["crossed_at"], x["state"], x["elapsed_s"], x.get("threshold"),  # noqa: E731
                     x["segment"], x["commitment_s"])
    assert sorted(map(key, live)) == sorted(map(key, expected["warnings"]))
    ids = {x["warning_id"] for x in live}
    assert {f"{tag}-1:b:1:approaching@25", f"{tag}-1:b:1:approaching@50", f"{tag}-2:b:1:resolved",
            f"{tag}-2:c:1:resolved", f"{tag}-5:__order__:1:tolerance_breached"} <= ids
    assert not any(i.startswith(f"{tag}-3:") for i in ids)  # the frozen segment's calendar is closed today
    assert {x["segment"] for x in live if x["order_id"] == f"{tag}-1"} == {"hot"}
    outcomes = {(x["order_id"], x["node"], x["run"]): (x["state"], x["elapsed_s"])
                for x in topics.records("sla.outcomes") if x["order_id"].startswith(tag)}
    assert outcomes[(f"{tag}-1", "b", 1)] == ("completed_normal", 1.9)  # completed with its order
    assert outcomes[(f"{tag}-2", "b", 1)] == ("completed_acceptable", 3.6)  # one run, paused and resumed
    tally = Counter((node, state) for (_, node, _), (state, _) in outcomes.items())
    for row in expected["summary"]:
        for state in ("completed_normal", "completed_acceptable", "completed_warning", "cancelled"):
            assert tally[(row["node"], state)] == row[state], (row["node"], state)
    letters = [(orjson.loads(x["raw"])["order_id"], x["reason"]) for x in topics.records("sla.deadletter")
               if tag in x["raw"]]
    assert Counter(reason for _, reason in letters) == Counter(
        {k: v for k, v in expected["invalid"].items() if v}) == Counter(
        {"invalid_transition": 2, "unknown_node": 2})
    assert w.metric("sla_crossings_total", {"process": "r", "node": "a", "segment": "hot", "kind": "approaching"}) >= 3
    assert w.metric("sla_events_total", {"process": "r", "type": "status_changed"}) >= 8
    apply_policies(stack, topics.prefix, pol)


CALENDAR_POLICY = """process: pc
calendar: desk
nodes:
  n: {commitment: 15s, tolerance: 40s}
"""


def _calendars(closed_days: list[str]) -> str:
    days = ", ".join(f'"{d}"' for d in closed_days)
    return ("calendars:\n  desk:\n    timezone: UTC\n    hours: {" + ", ".join(
        f'{d}: ["00:00-24:00"]' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")) + "}\n"
            f"    holidays: [{days}]\n")


@pytest.mark.parametrize(("store", "static"), [("rocksdb://", False), ("memory://", False), ("rocksdb://", True)])
def test_a_calendar_redefined_moves_the_crossings_of_open_runs(stack, tmp_path, store, static):
    # calendars are looked up by name: the run started while today and the next two days were holidays (its breach
    # two days away); the holidays are then removed, and it must breach 15 s after its start, announced live
    prefix = f"c{uuid.uuid4().hex[:8]}."
    t0 = now()
    closed = [(t0 + seconds(86400 * i)).date().isoformat() for i in range(3)]
    pol = write_policies(tmp_path / "policies", CALENDAR_POLICY)
    (pol / "calendars.yaml").write_text(_calendars(closed))
    member = {"SLAMON_GROUP_INSTANCE_ID": "cal-0"} if static else {}  # as the chart runs workers
    w = Worker(worker_env(stack, prefix, free_port(), tmp_path / "data", SLAMON_POLICIES=str(pol),
                          SLAMON_STORE=store, SLAMON_TICK_INTERVAL=str(TICK), **member), tmp_path / "w.log").start()
    try:
        w.wait_ready()
        topics = Topics(stack.kafka_bootstrap, prefix)
        t0 = now()
        topics.produce([event("cal-1", "node_started", t0, process="pc")])
        wait_for(lambda: w.metric("sla_events_total", {"process": "pc"}) >= 1, 20, "the event applied")
        opened = write_policies(tmp_path / "policies-v2", CALENDAR_POLICY)
        (opened / "calendars.yaml").write_text(_calendars([]))
        apply_policies(stack, prefix, opened)
        breach = wait_for(lambda: [x for x in warnings_of(topics, "cal-") if x["kind"] == "commitment_breached"],
                          60, f"the breach under the redefined calendar\n{w.tail()}")
        assert [x["crossed_at"] for x in breach] == [utc(t0 + seconds(15))]
        assert "open runs scheduled again under redefined calendars" in w.log_path.read_text()
    finally:
        assert w.stop() == 0, w.tail()
