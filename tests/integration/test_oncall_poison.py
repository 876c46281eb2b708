"""Poison records on sla.warnings and sla.outcomes against real servers (Kafka, Redis, Alertmanager): one board
and one notifier read every kind of unusable record, each followed by a valid one. The valid records take effect,
both processes stay up, each poison record is logged once and counted on /metrics under its reason, and after a
restart none is read again (its offset was committed)."""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import uuid

import orjson
import pytest
import redis

from .live import Worker, now, utc, wait_for
from .test_oncall import Proc, oncall_env, start_alertmanager

pytestmark = pytest.mark.integration

STARTED = "2024-06-03T08:00:00Z"
SKIPPED = "skipping a record it cannot use"


def warning(order: str, **over) -> dict:
    w = {"warning_id": f"{order}:n:1:commitment_breached", "kind": "commitment_breached", "order_id": order,
         "process": "p", "node": "n", "run": 1, "segment": "default", "owner": "field-ops", "policy_version": 1,
         "attrs": {}, "state": "in_progress_acceptable", "started_at": STARTED, "crossed_at": utc(now()),
         "elapsed_s": 2.0, "commitment_s": 2.0, "tolerance_s": 60.0}
    return {**w, **over}


def outcome(order: str, **over) -> dict:
    o = {"order_id": order, "process": "p", "node": "n", "run": 1, "segment": "default", "owner": "field-ops",
         "policy_version": 1, "attrs": {}, "state": "completed_acceptable", "started_at": STARTED,
         "ended_at": utc(now()), "elapsed_s": 30.0, "commitment_s": 2.0, "tolerance_s": 60.0}
    return {**o, **over}


def drop(rec: dict, field: str) -> dict:
    return {k: v for k, v in rec.items() if k != field}


# (what, value: bytes, None (no value) or a record, reason) of each kind of poison
COMMON = [("non-UTF-8", b"\xff\xfe{\"kind\": 1}", "not_utf8"), ("not JSON", b"{not json", "not_json"),
          ("no value", None, "not_json"), ("null", b"null", "not_an_object"), ("list", b"[1, 2]", "not_an_object"),
          ("number", b"42", "not_an_object"), ("string", b'"text"', "not_an_object"), ("no fields", b"{}", "missing_field")]
WARNING_POISON = COMMON + [
    ("no crossed_at", drop(warning("x"), "crossed_at"), "missing_field"),
    ("run: x", warning("x", run="x"), "wrong_type"),
    ("crossed_at: 5", warning("x", crossed_at=5), "wrong_type"),
    ("order_id: null", warning("x", order_id=None), "wrong_type"),
    ("owner: object", warning("x", owner={"team": "a"}), "wrong_type"),
    ("unknown kind", warning("x", kind="exploded", warning_id="x:n:1:exploded"), "bad_value"),
    ("warning_id of another run", warning("x", warning_id="y:n:1:commitment_breached"), "bad_value"),
    ("crossed_at without offset", warning("x", crossed_at="2024-06-03T08:00:00"), "bad_value"),
]
OUTCOME_POISON = COMMON + [
    ("run: x", outcome("x", run="x"), "wrong_type"),
    ("ended_at: 5", outcome("x", ended_at=5), "wrong_type"),
    ("order_id: null", outcome("x", order_id=None), "wrong_type"),
    ("not a final state", outcome("x", state="in_progress_normal"), "bad_value"),
    ("no ended_at", drop(outcome("x"), "ended_at"), "missing_field"),
]


def value(v) -> bytes | None:
    return v if v is None or isinstance(v, bytes) else orjson.dumps(v)


def produce(bootstrap: str, records: list[tuple[str, bytes | None]]) -> list[int]:
    """Send (topic, value) in order, all with one key (one partition: the order is kept); returns the offsets."""
    async def main() -> list[int]:
        from aiokafka import AIOKafkaProducer

        p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await p.start()
        try:
            return [(await p.send_and_wait(t, value=v, key=b"poison")).offset for t, v in records]
        finally:
            await p.stop()

    return asyncio.run(main())


class Consumer(Worker):
    """A `slamon board` or `slamon notifier` subprocess on a web port of its own (the worker helper's /metrics,
    log and stop)."""

    def __init__(self, env: dict, name: str, *args: str):
        super().__init__(oncall_env(env), env["tmp"] / f"{name}.log")
        self.name, self.args = name, args
        self.proc = Proc([sys.executable, "-m", "monitor.cli", *args], self.env, self.log_path).p

    def skipped(self) -> dict[tuple[str, str], float]:
        """{(topic, reason): count} of slamon_skipped_records_total on /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        status, body = self.get("/metrics")
        assert status == 200, f"{self.name} /metrics answered {status}"
        return {(s.labels["topic"], s.labels["reason"]): s.value for f in text_string_to_metric_families(body.decode())
                for s in f.samples if s.name == "slamon_skipped_records_total" and s.value}

    def skip_lines(self) -> list[dict]:
        lines = [json.loads(x) for x in self.log_path.read_text(errors="replace").splitlines() if x.startswith("{")]
        return [x for x in lines if x["msg"] == SKIPPED]

    def alive(self) -> None:
        assert self.proc.poll() is None, f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"


@pytest.fixture(scope="module")
def env(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("poison")
    am = start_alertmanager(tmp)
    prefix = f"x{uuid.uuid4().hex[:8]}."
    try:
        yield {"stack": stack, "prefix": prefix, "tmp": tmp, "am": am, "ns": f"slamon:{prefix.rstrip('.')}"}
    finally:
        am.stop()


def test_poison_records_are_skipped_counted_committed_and_never_stop_the_consumers(env):
    stack, am, prefix, ns = env["stack"], env["am"], env["prefix"], env["ns"]
    warnings_topic, outcomes_topic = prefix + "sla.warnings", prefix + "sla.outcomes"
    tag = uuid.uuid4().hex[:6]
    records: list[tuple[str, bytes | None]] = []
    valid_warnings, valid_outcomes = [], []
    for i, (_, poison, _) in enumerate(WARNING_POISON):
        order = f"{tag}-w{i}"
        records += [(warnings_topic, value(poison)), (warnings_topic, value(warning(order)))]
        valid_warnings.append(order)
    # well-formed, but Alertmanager refuses it (it would start after its lease ends): the board takes it
    future = f"{tag}-future"
    records.append((warnings_topic, value(warning(future, crossed_at="2999-01-01T00:00:00Z"))))
    for i, (_, poison, _) in enumerate(OUTCOME_POISON):
        order = f"{tag}-o{i}"
        records += [(outcomes_topic, value(poison)), (outcomes_topic, value(outcome(order)))]
        valid_outcomes.append(order)
    offsets = produce(stack.kafka_bootstrap, records)
    poison_offsets = {(warnings_topic, offsets[2 * i]) for i in range(len(WARNING_POISON))} | {
        (outcomes_topic, offsets[2 * len(WARNING_POISON) + 1 + 2 * i]) for i in range(len(OUTCOME_POISON))}

    r = redis.Redis.from_url(stack.redis_url)
    board = Consumer(env, "board-1", "board")
    notifier = Consumer(env, "notifier-1", "notifier", "--lease", "300", "--resend", "60")
    try:
        def board_done():
            breaches = {m.decode() for m in r.zrange(f"{ns}:breaches", 0, -1)}
            ended = [o for o in valid_outcomes if (e := r.hget(f"{ns}:order:{o}", "n:1")) and json.loads(e)["ended_at"]]
            return breaches >= {f"{o}:n:1:commitment_breached" for o in [*valid_warnings, future]} and \
                len(ended) == len(valid_outcomes)

        def alerted():
            got = {a["labels"]["order_id"] for a in json.loads(am._get("/api/v2/alerts") or b"[]")}
            return got >= set(valid_warnings)

        for svc in (board, notifier):
            wait_for(lambda svc=svc: svc.alive() or svc.get("/healthz")[0] == 200, 60, f"{svc.name} /healthz")
        wait_for(lambda: board.alive() or board_done(), 60, "every valid record on the board")
        wait_for(lambda: notifier.alive() or alerted(), 60, "every valid breach in Alertmanager")
        got = {a["labels"]["order_id"] for a in json.loads(am._get("/api/v2/alerts"))}
        assert future not in got and not {o for o in got if o.startswith(f"{tag}-") and o not in valid_warnings}

        expected_warnings = collections.Counter((warnings_topic, reason) for _, _, reason in WARNING_POISON)
        expected_outcomes = collections.Counter((outcomes_topic, reason) for _, _, reason in OUTCOME_POISON)
        wait_for(lambda: board.skipped() == {**expected_warnings, **expected_outcomes}, 10, "the board's counts")
        wait_for(lambda: notifier.skipped() == {**expected_warnings, (warnings_topic, "rejected"): 1}, 10,
                 "the notifier's counts")
        for svc in (board, notifier):
            svc.alive()
            assert svc.get("/healthz")[0] == 200
        # each poison record logged once, with where it is and why
        board_lines = {(x["topic"], x["partition"], x["offset"], x["reason"]) for x in board.skip_lines()}
        assert len(board.skip_lines()) == len(board_lines) == len(poison_offsets)
        assert {(t, o) for t, _, o, _ in board_lines} == poison_offsets
        [rejected] = [x for x in notifier.skip_lines() if x["reason"] == "rejected"]
        assert rejected["offset"] == offsets[2 * len(WARNING_POISON)] and "HTTP 400" in rejected["detail"]
        assert len(notifier.skip_lines()) == len(WARNING_POISON) + 1
        assert board.stop() == 0 and notifier.stop() == 0

        # a restart reads none of them again: one new valid record per topic takes effect, nothing is skipped
        produce(stack.kafka_bootstrap, [(warnings_topic, value(warning(f"{tag}-again"))),
                                        (outcomes_topic, value(outcome(f"{tag}-again-o")))])
        board = Consumer(env, "board-2", "board")
        notifier = Consumer(env, "notifier-2", "notifier", "--lease", "300", "--resend", "60")
        wait_for(lambda: board.alive() or (r.zscore(f"{ns}:breaches", f"{tag}-again:n:1:commitment_breached")
                                           and r.hget(f"{ns}:order:{tag}-again-o", "n:1")), 60, "the new records")
        wait_for(lambda: notifier.alive() or f"{tag}-again" in {
            a["labels"]["order_id"] for a in json.loads(am._get("/api/v2/alerts") or b"[]")}, 60, "the new alert")
        for svc in (board, notifier):
            svc.alive()
            assert svc.skipped() == {} and svc.skip_lines() == []
    finally:
        board.stop()
        notifier.stop()
        r.close()
