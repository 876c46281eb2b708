"""The same job as one slamon worker, on Quix Streams (confluent-kafka, RocksDB state with a changelog): the peer
`bench/live_bench.py` compares the worker with. Never a runtime dependency: `pip install -e '.[bench]'`.

Per message of `workflow.events`: decode and validate the event with our core, check the key, load the order's
state from Quix's state store, apply the event with our engine, store the new state (Quix writes its changelog),
and produce the warnings, outcomes and dead letters to one output topic. Ticks are not read (a backlog drain has
next to none). Stops after N events and prints one JSON line: {"events": N, "first": t, "last": t} (monotonic
seconds of the first and the N-th event processed) and "cpu_first" / "cpu_last" (the process's CPU seconds then).

    python bench/quix_peer.py --bootstrap HOST:PORT --topic T --out T2 --policies DIR --events N
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.core.engine import Engine, dump_state, load_state  # noqa: E402
from monitor.core.events import Malformed, decode_event  # noqa: E402
from monitor.core.instants import format_instant  # noqa: E402
from monitor.core.policies import load_policy_dir  # noqa: E402
from monitor.core.records import outcome_record, warning_record  # noqa: E402


class Collect:
    """The engine's sink: output records of one event, in order."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def run_started(self, state, run) -> None:
        pass

    def run_counted(self, state, run) -> None:
        pass

    def warning(self, state, run, kind, run_state, at, elapsed) -> None:
        rec = warning_record(state, run, kind, run_state, at, elapsed)
        rec["detected_at"] = format_instant(int(time.time() * 1_000_000))
        self.out.append(orjson.dumps(rec))

    def outcome(self, state, run, run_state, ended_at, elapsed) -> None:
        rec = outcome_record(state, run, run_state, ended_at, elapsed)
        rec["detected_at"] = format_instant(int(time.time() * 1_000_000))
        self.out.append(orjson.dumps(rec))


def main() -> int:
    ap = argparse.ArgumentParser(description="the worker's job on Quix Streams (benchmark peer)")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True, help="the workflow events topic (already filled)")
    ap.add_argument("--out", required=True, help="output topic")
    ap.add_argument("--policies", required=True)
    ap.add_argument("--events", type=int, required=True, help="stop after this many events")
    ap.add_argument("--guarantee", default="at-least-once", choices=["at-least-once", "exactly-once"])
    args = ap.parse_args()

    from quixstreams import Application

    policies, problems = load_policy_dir(Path(args.policies))
    if problems:
        raise SystemExit(f"policies: {problems}")
    engine = Engine(policies)
    state_dir = tempfile.mkdtemp(prefix="slamon-quix-")
    app = Application(broker_address=args.bootstrap, consumer_group=f"quix-{Path(state_dir).name}",
                      auto_offset_reset="earliest", state_dir=state_dir, loglevel="WARNING",
                      processing_guarantee=args.guarantee)
    source = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
    out = app.topic(args.out, key_serializer="bytes", value_serializer="bytes")
    seen = {"n": 0, "first": 0.0, "last": 0.0, "cpu_first": 0.0, "cpu_last": 0.0}

    def process(value: bytes, key: bytes, timestamp: int, headers, state) -> list[bytes]:
        n = seen["n"] = seen["n"] + 1
        if n == 1:
            seen["first"], seen["cpu_first"] = time.monotonic(), time.process_time()
        sink = Collect()
        try:
            ev = decode_event(value)
        except Malformed as exc:
            return [orjson.dumps({"reason": "malformed", "detail": str(exc)})]
        if key != ev.order_id.encode():
            return [orjson.dumps({"reason": "malformed", "detail": "key"})]
        raw = state.get_bytes("s")
        order = load_state(raw, engine) if raw else None
        new, rejection = engine.apply(order, ev, sink)
        if rejection is not None:
            return [orjson.dumps({"reason": rejection.reason, "detail": rejection.detail})]
        state.set_bytes("s", dump_state(new))
        if n >= args.events:
            seen["last"], seen["cpu_last"] = time.monotonic(), time.process_time()
            app.stop()
        return sink.out

    sdf = app.dataframe(source)
    sdf = sdf.apply(process, stateful=True, metadata=True, expand=True)
    sdf.to_topic(out)
    app.run()
    print(orjson.dumps(seen | {"events": seen["n"]}).decode(), flush=True)
    return 0 if seen["n"] >= args.events else 1


if __name__ == "__main__":
    sys.exit(main())
