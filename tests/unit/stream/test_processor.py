"""The live processor without Kafka: a dict as the order table, a list as the output topics."""

import base64

import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.core.engine import Engine
from monitor.core.instants import format_instant, parse_instant
from monitor.stream.metrics import MonitorMetrics
from monitor.stream.processor import Processor
from monitor.stream.table import decode_header

from ..helpers import policies

T0 = parse_instant("2026-11-21T08:00:00Z")
S = 1_000_000
POLICY = {"process": "p", "nodes": {"n": {"commitment": "3s", "tolerance": "10s"}},
          "segments": {"gold": {"n": {"commitment": "2s"}}}}


class Harness:
    def __init__(self):
        self.table: dict[bytes, bytes] = {}
        self.out: list[tuple[str, bytes | None, dict]] = []
        self.now = T0
        self.metrics = MonitorMetrics(CollectorRegistry())
        self.engine = Engine(policies(POLICY))
        self.metrics.prime(self.engine.policies)
        self.proc = Processor(self.engine, self.table, self.metrics, lambda: self.now, closed_retention_us=60 * S)
        self.offsets: dict[int, int] = {}
        self.proc.rebuild([0, 1, 3], [])  # assignment: this worker owns partitions 0, 1 and 3

    def event(self, etype, at_s, order="o1", partition=0, write_s=None, raw=None, **extra):
        body = {"event_id": f"{order}-{etype}-{at_s}", "order_id": order, "process": "p", "type": etype,
                "node": "n", "at": format_instant(T0 + int(at_s * S)), **extra}
        offset = self.offsets.get(partition, -1) + 1
        self.offsets[partition] = offset
        self.proc.on_event(partition, offset, (T0 + int((write_s if write_s is not None else at_s) * S)) // 1000,
                           order.encode(), raw if raw is not None else orjson.dumps(body))
        self.proc.release_held_tick(partition)  # as the worker does after each fetch's events
        self.commit()
        return offset

    def commit(self):
        """What the worker does after a batch: its metric changes applied, its outputs and table values committed
        together."""
        self.proc.flush_metrics()
        for p in list(self.proc._batches):
            batch = self.proc.take(p)
            self.out += [(kind, key, orjson.loads(value)) for kind, key, value in batch.outputs]
            for key, value in batch.changes.items():
                if value is None:
                    self.table.pop(key, None)
                else:
                    self.table[key] = value

    def tick(self, now_s, partition=0, end=None, committed=None):
        self.now = T0 + int(now_s * S)
        end = self.offsets.get(partition, -1) + 1 if end is None else end
        wm = self.proc.on_tick(partition, orjson.dumps({"now": format_instant(self.now), "end_offset": end}), committed)
        self.commit()
        return wm

    def warnings(self):
        return [(v["kind"], v["crossed_at"]) for t, _, v in self.out if t == "warnings"]

    def gauge(self, level, segment="default"):
        return self.metrics.registry.get_sample_value(
            "sla_runs_in_progress", {"process": "p", "node": "n", "segment": segment, "level": level})


def test_nothing_arrives_a_tick_announces_the_breach_once():
    h = Harness()
    h.event("node_started", 0)
    assert h.gauge("normal") == 1
    h.tick(2.9)
    assert h.warnings() == []
    h.tick(3.5)
    h.tick(4.0)
    assert h.warnings() == [("commitment_breached", "2026-11-21T08:00:03Z")]
    w = next(v for t, _, v in h.out if t == "warnings")
    assert w["detected_at"] == "2026-11-21T08:00:03.500000Z"
    assert h.metrics.registry.get_sample_value("sla_warning_delay_seconds_sum", {"kind": "commitment_breached"}) == 0.5
    assert (h.gauge("normal"), h.gauge("acceptable")) == (0, 1)


def test_a_tick_overtaking_a_backlog_announces_nothing_false():
    h = Harness()
    h.event("node_started", 0)
    # the completion (at 1s, written at 1s) is in the log at offset 1 but not yet applied when the tick comes
    wm = h.tick(20, end=2)
    assert wm == T0 and h.warnings() == []
    h.event("node_completed", 1)
    assert h.tick(21) == T0 + 21 * S
    assert h.warnings() == []
    assert [v["state"] for t, _, v in h.out if t == "outcomes"] == ["completed_normal"]


def test_a_tick_that_came_too_early_is_released_once_the_events_before_it_are_applied():
    h = Harness()
    h.event("node_started", 0, order="a")
    h.event("node_started", 0, order="b")
    # the tick says 3 events were written before it: the third (offset 2) is not applied yet
    assert h.tick(5, end=3) == T0 and h.warnings() == []
    h.event("node_completed", 1, order="b", write_s=1)  # offset 2, in a later fetch
    assert h.proc.release_held_tick(0) is None  # (Harness.event committed it already; released by then)
    assert h.proc.clocks[0].watermark == T0 + 5 * S  # no second tick needed
    assert h.warnings() == [("commitment_breached", "2026-11-21T08:00:03Z")]  # a's; b completed before
    assert [v["state"] for t, _, v in h.out if t == "outcomes"] == ["completed_normal"]


def test_a_held_tick_waits_for_every_event_written_before_it():
    h = Harness()
    h.event("node_started", 0, order="a")
    assert h.tick(5, end=3) == T0
    h.event("node_started", 4, order="c", write_s=4)  # offset 1: one more (offset 2) still to come
    assert h.proc.clocks[0].watermark == T0 and h.proc.clocks[0].held_tick == (T0 + 5 * S, 3)  # still held
    assert h.warnings() == []
    h.event("node_started", 4.5, order="d", write_s=4.5)  # offset 2: now every event before the tick is applied
    assert h.proc.clocks[0].watermark == T0 + 5 * S and h.proc.clocks[0].held_tick is None
    assert h.warnings() == [("commitment_breached", "2026-11-21T08:00:03Z")]  # a's, by the released tick


def test_under_lag_the_watermark_is_the_write_time_of_the_last_applied_event():
    h = Harness()
    h.event("node_started", 0, order="a")
    h.event("node_started", 5, order="b", write_s=5)
    assert h.tick(30, end=5) == T0 + 5 * S  # 3 more events not applied yet
    assert h.warnings() == [("commitment_breached", "2026-11-21T08:00:03Z")]


def test_no_event_since_assignment_and_nothing_in_the_table_uses_the_committed_offset():
    h = Harness()
    h.event("node_completed", 0)  # rejected (no open run): processed, but nothing of it is in the table
    assert h.table == {}
    h2 = Harness()
    h2.proc.rebuild([0], h2.table.items())
    assert h2.tick(5, end=1, committed=0) == 0  # offset 0 not yet processed by this group
    assert h2.tick(6, end=1, committed=1) == T0 + 6 * S


def test_redelivered_events_are_skipped_and_true_duplicates_dead_lettered():
    h = Harness()
    h.event("node_started", 0)
    value = h.table[b"o1"]
    h.proc.on_event(0, 0, T0 // 1000, b"o1", orjson.dumps({"event_id": "o1-node_started-0", "order_id": "o1",
                    "process": "p", "type": "node_started", "node": "n", "at": format_instant(T0)}))
    h.commit()
    assert h.table[b"o1"] == value and h.out == []
    h.proc.on_event(0, 7, T0 // 1000, b"o1", orjson.dumps({"event_id": "o1-node_started-0", "order_id": "o1",
                    "process": "p", "type": "node_started", "node": "n", "at": format_instant(T0)}))
    h.commit()
    assert [(t, v["reason"]) for t, _, v in h.out] == [("deadletter", "duplicate_event")]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"\xff\x00garbage", "malformed"), (b'{"event_id": "x"}', "malformed"),
     (orjson.dumps({"event_id": "u", "order_id": "o9", "process": "zzz", "type": "node_started", "node": "n",
                    "at": "2026-11-21T08:00:00Z"}), "unknown_process"),
     (orjson.dumps({"event_id": "u", "order_id": "o9", "process": "p", "type": "node_started", "node": "q",
                    "at": "2026-11-21T08:00:00Z"}), "unknown_node"),
     (orjson.dumps({"event_id": "u", "order_id": "o9", "process": "p", "type": "node_completed", "node": "n",
                    "at": "2026-11-21T08:00:00Z"}), "invalid_transition")],
)
def test_invalid_events_go_to_the_dead_letter_topic_with_original_bytes(raw, reason):
    h = Harness()
    h.proc.on_event(3, 41, T0 // 1000, b"o9" if reason != "malformed" else b"k", raw)
    h.commit()
    [(topic, key, rec)] = h.out
    assert topic == "deadletter" and key == (b"o9" if reason != "malformed" else b"k")
    assert rec["reason"] == reason and rec["partition"] == 3 and rec["offset"] == 41 and rec["detail"]
    original = base64.b64decode(rec["raw"]) if rec["raw_encoding"] == "base64" else rec["raw"].encode()
    assert original == raw
    assert h.metrics.registry.get_sample_value("sla_invalid_events_total", {"reason": reason}) == 1
    assert h.table == {}


def test_out_of_order_is_dead_lettered():
    h = Harness()
    h.event("node_started", 10)
    h.event("node_completed", 5)
    assert [v["reason"] for t, _, v in h.out if t == "deadletter"] == ["out_of_order"]


def test_rebuild_restores_heaps_and_gauges_and_revoke_forgets_them():
    h = Harness()
    h.event("node_started", 0, order="a", partition=0)
    h.event("node_started", 0, order="b", partition=1, segment="gold")
    h.tick(2.5, partition=1)
    assert h.warnings() == [("commitment_breached", "2026-11-21T08:00:02Z")]
    h2 = Harness()
    h2.table.update(h.table)
    assert h2.proc.rebuild([0, 1], h2.table.items()) == 2
    assert h2.gauge("normal") == 1 and h2.gauge("acceptable", "gold") == 1
    h2.proc.revoke([1])
    assert h2.gauge("acceptable", "gold") == 0
    h2.tick(4, partition=0)
    h2.tick(60, partition=1)  # partition 1 is no longer ours: nothing to advance
    assert h2.warnings() == [("commitment_breached", "2026-11-21T08:00:03Z")]


def test_order_completed_completes_the_open_node_runs_and_closes_the_order():
    h = Harness()
    h.event("node_started", 0)
    h.event("order_completed", 1)
    assert h.gauge("normal") == 0  # order_completed completes every open run (CONTRACTS section 2)
    assert [(v["node"], v["state"], v["ended_at"]) for t, _, v in h.out if t == "outcomes"] == [
        ("n", "completed_normal", "2026-11-21T08:00:01Z")]
    h.event("node_completed", 2)  # rejected: the order is closed
    assert [v["reason"] for t, _, v in h.out if t == "deadletter"] == ["invalid_transition"]


def test_purge_of_finished_order():
    h = Harness()
    h.event("node_started", 0)
    h.event("node_completed", 1)
    h.event("order_completed", 2)
    assert decode_header(h.table[b"o1"])[2] == T0 + 62 * S
    h.tick(61)
    assert b"o1" in h.table
    h.tick(63)
    assert b"o1" not in h.table


def test_after_a_handover_the_table_tells_how_far_the_partition_was_applied():
    h = Harness()
    h.event("node_started", 0, order="a")
    h.event("node_started", 0, order="b")
    new_owner = Harness()
    new_owner.table.update(h.table)
    new_owner.proc.rebuild([0], new_owner.table.items())
    # no event since assignment and no committed offset known: the stored offsets (0 and 1) cover offsets < 2
    assert new_owner.tick(5, end=2, committed=None) == T0 + 5 * S
    assert {w[0] for w in new_owner.warnings()} == {"commitment_breached"}
    # an event beyond what the table holds keeps the clock back
    newer = Harness()
    newer.table.update(h.table)
    newer.proc.rebuild([0], newer.table.items())
    assert newer.tick(5, end=3, committed=None) == 0


@pytest.mark.parametrize("by", ["tick", "event"])
def test_nothing_reaches_the_table_before_the_batch_that_records_it_is_committed(by):
    # the announcement and the table value that records it are committed in one transaction: until the worker
    # takes the batch, neither the table nor the outputs have it, and the batch holds both
    h = Harness()
    h.event("node_started", 0)
    before = dict(h.table)
    h.now = T0 + 4 * S
    if by == "tick":
        h.proc.on_tick(0, orjson.dumps({"now": format_instant(h.now), "end_offset": 1}), None, 5)
    else:
        h.proc.on_event(0, 1, (T0 + 4 * S) // 1000, b"o1", orjson.dumps({
            "event_id": "done", "order_id": "o1", "process": "p", "type": "node_completed", "node": "n",
            "at": format_instant(T0 + 4 * S)}))
    assert h.table == before
    batch = h.proc.take(0)
    assert [kind for kind, _, _ in batch.outputs].count("warnings") >= 1 and set(batch.changes) == {b"o1"}
    assert (batch.ticks_offset, batch.events_offset) == ((5, None) if by == "tick" else (None, 1))
    assert h.proc.take(0) is None


def test_reads_see_the_batch_before_the_store():
    h = Harness()
    h.proc.on_event(0, 0, T0 // 1000, b"o1", orjson.dumps({"event_id": "a", "order_id": "o1", "process": "p",
                    "type": "node_started", "node": "n", "at": format_instant(T0)}))
    h.proc.on_event(0, 1, T0 // 1000, b"o1", orjson.dumps({"event_id": "b", "order_id": "o1", "process": "p",
                    "type": "node_completed", "node": "n", "at": format_instant(T0 + S)}))
    h.commit()
    assert [t for t, _, v in h.out if t == "deadletter"] == []
    assert [v["state"] for t, _, v in h.out if t == "outcomes"] == ["completed_normal"]


def test_reads_see_batches_in_flight_newest_first_then_the_store():
    # fast fetch: a batch is processed while the partition's earlier batches still commit (pipeline.py); the
    # order's value must be the one the newest earlier batch left, not the older committed one
    h = Harness()
    ev = {"order_id": "o1", "process": "p", "node": "n"}
    h.proc.on_event(0, 0, T0 // 1000, b"o1", orjson.dumps({**ev, "event_id": "a", "type": "node_started",
                                                           "at": format_instant(T0)}))
    first = h.proc.take(0)
    h.proc.inflight[0] = [first]  # taken, transaction not committed: nothing in the store yet
    assert h.table == {}
    h.proc.on_event(0, 1, T0 // 1000, b"o1", orjson.dumps({**ev, "event_id": "b", "type": "node_completed",
                                                           "at": format_instant(T0 + S)}))
    second = h.proc.take(0)
    assert [orjson.loads(v)["state"] for k, _, v in second.outputs if k == "outcomes"] == ["completed_normal"]
    # redelivered after both were taken: recognised by the offset in the newest batch's value
    h.proc.inflight[0] = [first, second]
    h.proc.on_event(0, 1, T0 // 1000, b"o1", orjson.dumps({**ev, "event_id": "b", "type": "node_completed",
                                                           "at": format_instant(T0 + S)}))
    assert h.proc.take(0).outputs == []


def test_a_key_that_is_not_the_order_id_is_malformed():
    h = Harness()
    h.event("node_started", 0, order="o1")
    raw = orjson.dumps({"event_id": "x", "order_id": "o1", "process": "p", "type": "node_completed", "node": "n",
                        "at": format_instant(T0 + S)})
    h.proc.on_event(0, 9, T0 // 1000, b"someone-else", raw)
    h.commit()
    [(kind, key, rec)] = [o for o in h.out if o[0] == "deadletter"]
    assert rec["reason"] == "malformed" and "order_id" in rec["detail"] and key == b"someone-else"
    assert h.gauge("normal") == 1  # the run is still open


def test_a_state_over_the_size_limit_is_malformed_and_leaves_the_order_as_it_was():
    h = Harness()
    h.proc.max_state_bytes = 2000
    h.event("node_started", 0, order="o1")
    before = h.table[b"o1"]
    h.event("node_completed", 1, order="o1")
    h.event("node_started", 2, order="o1", attrs={"blob": "x" * 5000})
    [rec] = [v for t, _, v in h.out if t == "deadletter"]
    assert rec["reason"] == "malformed" and "SLAMON_MAX_STATE_BYTES" in rec["detail"]
    assert h.table[b"o1"] != before and b"xxxxx" not in h.table[b"o1"]
    assert h.metrics.registry.get_sample_value("sla_runs_started_total",
                                               {"process": "p", "node": "n", "segment": "default"}) == 1
    h.event("node_started", 3, order="o1")  # the order as it was: no open run, so this one starts
    assert [v["reason"] for t, _, v in h.out if t == "deadletter"] == ["malformed"]
    assert h.metrics.registry.get_sample_value("sla_runs_started_total",
                                               {"process": "p", "node": "n", "segment": "default"}) == 2


def test_an_engine_failure_is_an_internal_error_and_moves_nothing(monkeypatch):
    h = Harness()
    h.event("node_started", 0, order="o1")
    value = h.table[b"o1"]

    def broken(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(h.engine, "apply", broken)
    h.event("node_completed", 1, order="o1")
    monkeypatch.undo()
    [rec] = [v for t, _, v in h.out if t == "deadletter"]
    assert rec["reason"] == "internal_error" and "injected" in rec["detail"]
    assert h.table[b"o1"] == value
    h.event("node_completed", 2, order="o1")  # later events of the order are applied
    assert [v["state"] for t, _, v in h.out if t == "outcomes"] == ["completed_normal"]
    h.event("node_started", 0, order="o2")  # and other orders
    assert b"o2" in h.table


def test_a_tick_from_the_future_is_held_to_the_workers_own_clock():
    h = Harness()
    h.event("node_started", 0)
    h.now = T0 + 1 * S
    wm = h.proc.on_tick(0, orjson.dumps({"now": format_instant(T0 + 3600 * S), "end_offset": 0}), None)
    h.commit()
    assert wm == T0 + 1 * S and h.warnings() == []


@pytest.mark.parametrize("raw", [b"", b"nope", b"[]", b'{"now": 5}', b'{"now": "2026-11-21T08:00:00Z", "end_offset": "x"}'])
def test_an_unreadable_tick_is_skipped_and_counted(raw):
    h = Harness()
    h.event("node_started", 0)
    h.proc.on_tick(0, raw, None, 3)
    h.commit()
    assert h.metrics.registry.get_sample_value(
        "slamon_skipped_records_total", {"component": "worker", "topic": "sla.ticks", "reason": "unreadable_tick"}) == 1
    assert h.tick(4) == T0 + 4 * S and h.warnings()  # the next good tick works


# ---------------------------------------------------------------- section 12 on the live path

RICH = {"process": "p", "early_warning": [0.25, 0.5],
        "nodes": {"n": {"commitment": "4s", "tolerance": "8s"}, "m": {"commitment": "4s", "tolerance": "8s"}},
        "segments": {"gold": {"match": {"attrs.tier": "1"}, "n": {"commitment": "2s"}}},
        "statuses": {"Open": "n", "Work": "m", "Hold": {"pause": "m"}, "Done": {"end": "completed"}}}


def rich_harness():
    h = Harness()
    h.engine.set_policies(policies(RICH))
    h.metrics.prime(h.engine.policies)
    return h


def sample(h, name, labels):
    return h.metrics.registry.get_sample_value(name, labels)


def test_graded_warnings_status_runs_and_matched_segments_on_the_live_path():
    h = rich_harness()
    h.event("status_changed", 0, status="Open", attrs={"tier": 1})  # segment gold by match: n's commitment 2s
    assert h.gauge("normal", "gold") == 1
    h.tick(1.5)
    ids = [v["warning_id"] for t, _, v in h.out if t == "warnings"]
    assert ids == ["o1:n:1:approaching@25", "o1:n:1:approaching@50"]  # at 0.5s and 1s
    assert [v["threshold"] for t, _, v in h.out if t == "warnings"] == [0.25, 0.5]
    # every early warning counts under kind approaching; the level (and the gauge) does not move for them
    assert sample(h, "sla_crossings_total", {"process": "p", "node": "n", "segment": "gold", "kind": "approaching"}) == 2
    assert h.gauge("normal", "gold") == 1
    h.event("status_changed", 3, status="Work")  # completes n (3s of 2s: acceptable), starts m
    assert [(v["node"], v["state"], v["segment"]) for t, _, v in h.out if t == "outcomes"] == [
        ("n", "completed_acceptable", "gold")]
    m_normal = {"process": "p", "node": "m", "segment": "default", "level": "normal"}  # m: no tier on this event
    assert (h.gauge("acceptable", "gold"), sample(h, "sla_runs_in_progress", m_normal)) == (0, 1)
    h.event("status_changed", 4, status="Hold")  # paused with 1s used: exactly 25 %, so not crossed
    h.tick(60)
    assert [v["warning_id"] for t, _, v in h.out if t == "warnings"][-1] == "o1:n:1:resolved"
    h.event("status_changed", 61, status="Work")  # resumes m: 25 % is passed right after
    h.event("status_changed", 62, status="Done")  # 2s used in all (50 %, not passed): completed_normal
    assert [(v["warning_id"], v["crossed_at"]) for t, _, v in h.out if t == "warnings"][-1] == (
        "o1:m:1:approaching@25", "2026-11-21T08:01:01Z")
    assert [(v["node"], v["state"], v["elapsed_s"]) for t, _, v in h.out if t == "outcomes"][-1] == (
        "m", "completed_normal", 2.0)
    assert sample(h, "sla_events_total", {"process": "p", "type": "status_changed"}) == 5
    assert sample(h, "sla_runs_in_progress", m_normal) == 0 and h.gauge("normal", "gold") == 0


def test_status_events_that_cannot_be_applied_are_dead_lettered_with_their_reason():
    h = rich_harness()
    h.event("status_changed", 0, status="Hold")  # no current status run
    h.event("status_changed", 1, status="Closed")  # not mapped
    h.event("status_changed", 2, order="o2", raw=orjson.dumps({"event_id": "z", "order_id": "o2", "process": "p",
                                                               "type": "status_changed", "at": format_instant(T0)}))
    assert [v["reason"] for t, _, v in h.out if t == "deadletter"] == ["invalid_transition", "unknown_node",
                                                                       "malformed"]


def test_policies_prime_status_changed_only_for_processes_with_statuses():
    h = rich_harness()
    assert sample(h, "sla_events_total", {"process": "p", "type": "status_changed"}) == 0
    plain = Harness()
    assert sample(plain, "sla_events_total", {"process": "p", "type": "status_changed"}) is None
    assert sample(plain, "sla_events_total", {"process": "p", "type": "node_started"}) == 0


def test_a_table_value_it_cannot_read_is_an_internal_error_for_the_event_not_a_crash():
    # e.g. a state written by a newer worker (format 2) read by an older one: no crash loop on redelivery
    h = Harness()
    h.event("node_started", 0, order="o1")
    h.table[b"o1"] = b"0 0 -1|[99, \"o1\"]"
    h.event("node_completed", 1, order="o1")
    [rec] = [v for t, _, v in h.out if t == "deadletter"]
    assert rec["reason"] == "internal_error"
    assert h.table[b"o1"] == b"0 0 -1|[99, \"o1\"]"  # left as it was
    h.event("node_started", 0, order="o2")  # other orders go on
    assert b"o2" in h.table
    h.table[b"o3"] = b"garbage without a header"
    h.proc.deadlines.push(0, T0, b"o3")
    h.tick(5)  # an unreadable value met by a tick is skipped, the tick goes on


def test_an_engine_failure_after_changing_the_state_leaves_the_order_as_its_value_says(monkeypatch):
    # the engine changes states in place: a state it failed on half-way is never used again
    h = Harness()
    h.event("node_started", 0, order="o1")
    real = h.engine.apply

    def fails_after_changing(state, ev, sink):
        real(state, ev, sink)
        raise RuntimeError("injected after the change")

    monkeypatch.setattr(h.engine, "apply", fails_after_changing)
    h.event("node_completed", 1, order="o1")
    monkeypatch.undo()
    h.event("node_completed", 2, order="o1")  # the run is still open: completed now, 2 s after it started
    assert [(v["state"], v["elapsed_s"]) for t, _, v in h.out if t == "outcomes"] == [("completed_normal", 2.0)]
    assert [v["reason"] for t, _, v in h.out if t == "deadletter"] == ["internal_error"]


def test_a_table_value_replaced_behind_the_processor_is_read_afresh():
    # a decoded state is reused only for the very value object it was encoded to, not for the order's key
    h = Harness()
    h.event("node_started", 0, order="o1")
    started = h.table[b"o1"]
    h.event("node_completed", 1, order="o1")
    h.table[b"o1"] = bytes(bytearray(started))  # (an equal copy: e.g. the store read it back from disk)
    h.event("node_completed", 2, order="o1")  # applies to the run the table shows open
    assert [v["elapsed_s"] for t, _, v in h.out if t == "outcomes"] == [1.0, 2.0]


def test_reusing_decoded_states_changes_nothing_on_a_mixed_stream():
    """A stream with duplicates, redeliveries, rejections, crossings announced by ticks and purges: the same outputs,
    table values and metrics with and without the decoded states kept."""
    import random

    def run(keep_decoded):
        h = Harness()
        if not keep_decoded:
            h.proc._remember = lambda *args: None
        rng = random.Random(7)
        t = 0.0
        for _ in range(600):
            order = f"o{rng.randrange(12)}"
            etype = rng.choice(["node_started", "node_completed", "node_cancelled", "node_paused", "node_resumed",
                                "order_completed"])
            t += rng.choice([0.0, 0.5, 2.0, 4.0])
            if rng.random() < 0.05:  # redelivered: an offset already applied
                h.proc.on_event(0, max(h.offsets.get(0, 0) - 1, 0), T0 // 1000, order.encode(),
                                orjson.dumps({"event_id": "r", "order_id": order, "process": "p",
                                              "type": "node_started", "node": "n", "at": format_instant(T0)}))
                h.commit()
            h.event(etype, t, order=order, **({"segment": "gold"} if rng.random() < 0.3 else {}))
            if rng.random() < 0.2:
                h.tick(t + rng.choice([1, 3, 12, 90]))
        return h.out, dict(h.table), h.metrics.registry.get_sample_value(
            "sla_runs_started_total", {"process": "p", "node": "n", "segment": "default"})

    kept, plain = run(True), run(False)
    assert kept == plain
    assert any(t == "warnings" for t, _, _ in kept[0]) and any(t == "deadletter" for t, _, _ in kept[0])


@pytest.mark.parametrize("raw", [b"\xff\xfe" * 30_000, b"\x01" * 60_000, ("\u00e9" * 30_000).encode(),
                                 b'{"order_id": "o1", "pad": "' + b"x" * 60_000 + b'"}'],
                         ids=["binary", "escaped", "two-byte-chars", "long-json"])
def test_a_dead_letter_never_outgrows_the_record_limit(raw):
    # a dead letter larger than the broker takes would fail its transaction for ever and stop the partition
    h = Harness()
    h.proc.max_state_bytes = 4096
    h.event("node_started", 0, order="o1", raw=raw)
    [(kind, key, value)] = [o for o in h.out if o[0] == "deadletter"]
    encoded = orjson.dumps(value)
    assert len(encoded) <= 4096 and value["raw_truncated"] is True and value["raw_bytes"] == len(raw)
    if value["raw_encoding"] == "base64":
        prefix = base64.b64decode(value["raw"])
    else:
        prefix = value["raw"].encode()
    assert raw.startswith(prefix) and len(encoded) > 4096 * 0.8  # as much of it as fits
    from ..catalogue.test_schemas import validator

    validator("sla-deadletter").validate(value)
    h.event("node_started", 1, order="o2")  # the partition goes on
    assert b"o2" in h.table


def test_a_small_dead_letter_is_whole_and_not_marked():
    h = Harness()
    h.event("node_started", 0, order="o1", raw=b"\xff" * 100)
    [value] = [v for t, _, v in h.out if t == "deadletter"]
    assert base64.b64decode(value["raw"]) == b"\xff" * 100 and "raw_truncated" not in value


def test_a_calendar_redefined_by_new_policies_reaches_kept_states_as_it_reaches_read_ones():
    # a state read from its value takes its runs' calendars by name from the engine; one kept decoded must not
    # answer differently after new policies redefine a calendar
    doc = {"process": "p", "calendar": "desk", "nodes": {"n": {"commitment": "1h", "tolerance": "2h"}}}
    early = {"calendars": {"desk": {"timezone": "UTC", "hours": {d: ["08:00-10:00"] for d in
                                                                   ("mon", "tue", "wed", "thu", "fri", "sat")}}}}
    late = {"calendars": {"desk": {"timezone": "UTC", "hours": {d: ["08:00-18:00"] for d in
                                                                  ("mon", "tue", "wed", "thu", "fri", "sat")}}}}

    def run(keep_decoded):
        h = Harness()
        h.proc.set_policies(policies(doc, calendars=early))
        if not keep_decoded:
            h.proc._remember = lambda *args: None
        h.event("node_started", 0, order="o1")  # 2026-11-21 (a Saturday) 08:00
        h.proc.set_policies(policies(doc, calendars=late))
        h.event("node_completed", 3 * 3600, order="o1")  # 11:00: 2 working hours before, 3 after the change
        return [(v["state"], v["elapsed_s"]) for t, _, v in h.out if t == "outcomes"]

    assert run(True) == run(False) == [("completed_warning", 3 * 3600.0)]  # the new hours: 3 h worked


def _desk(hours):
    return {"calendars": {"desk": {"timezone": "UTC", "hours": {d: [hours] for d in
                                                                ("mon", "tue", "wed", "thu", "fri", "sat")}}}}


DESK_POLICY = {"process": "p", "calendar": "desk", "nodes": {"n": {"commitment": "3h", "tolerance": "4h"}}}


def test_a_calendar_redefined_moves_the_open_runs_crossings_at_the_next_rebuild():
    # started Saturday 08:00 under 08:00-10:00 (the 3 h commitment is used up Monday 09:00); the hours become
    # 08:00-18:00: by name, the run has worked 3 h at Saturday 11:00, and its breach must be announced then
    h = Harness()
    h.proc.set_policies(policies(DESK_POLICY, calendars=_desk("08:00-10:00")))
    h.event("node_started", 0, order="o1")
    assert decode_header(h.table[b"o1"])[2] == parse_instant("2026-11-23T09:00:00Z")
    assert h.proc.set_policies(policies(DESK_POLICY, calendars=_desk("08:00-18:00"))) == {"desk"}
    h.proc.rebuild([0, 1, 3], list(h.table.items()))  # the worker rejoins its group for it (app.py)
    h.tick(3600)
    assert decode_header(h.table[b"o1"])[2] == T0 + 3 * 3600 * S  # committed with the partition's next batch
    h.tick(3 * 3600 + 1)
    assert h.warnings() == [("commitment_breached", "2026-11-21T11:00:00Z")]


def test_a_rebuild_under_unchanged_calendars_changes_no_value():
    h = Harness()
    h.proc.set_policies(policies(DESK_POLICY, calendars=_desk("08:00-10:00")))
    h.event("node_started", 0, order="o1")
    before = dict(h.table)
    assert h.proc.set_policies(policies(DESK_POLICY, calendars=_desk("08:00-10:00"))) == frozenset()
    h.proc.rebuild([0, 1, 3], list(h.table.items()))
    assert h.proc.take(0) is None and h.table == before
