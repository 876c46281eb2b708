"""Order-state codec benchmark: the cost of `dump_state` (encode) and `load_state` (decode) per typical state.

The live worker decodes an order's state from its table, applies the order's events of a batch, and encodes it
back, once per batch and order. This measures the two halves on states built by the engine from the replay
benchmark's policies: an order with one open node run (and its order-level run), an order half-way through (one
run paused, five events applied), one on the office calendar, and a long trace (200 events, as BPIC 2012), each
with its size in bytes. Run with `.venv/bin/python bench/codec_bench.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from replay_bench import CALENDARS, LONG_NODES, LONG_POLICIES, POLICIES  # noqa: E402

from monitor.core.engine import Engine, dump_state, load_state  # noqa: E402
from monitor.core.events import event_from_object  # noqa: E402
from monitor.core.instants import US, format_instant, parse_instant  # noqa: E402
from monitor.core.policies import build_policy_set  # noqa: E402
from monitor.core.replay import ReplaySink  # noqa: E402

T0 = parse_instant("2026-04-01T09:00:00Z")


def build(engine: Engine, process: str, steps: list[tuple[str, str, int]], attrs: dict | None = None):
    """The state of one order after `steps` ((type, node, seconds after T0), in time order)."""
    state, sink = None, ReplaySink()
    for i, (etype, node, seconds) in enumerate(steps):
        obj = {"event_id": f"evt-{i:06d}-5c1f", "order_id": "order-00012345", "process": process, "type": etype,
               "node": node, "at": format_instant(T0 + seconds * US)}
        if attrs:
            obj["attrs"] = attrs
        state, rejection = engine.apply(state, event_from_object(obj), sink)
        assert rejection is None, rejection
    return state


def states() -> list[tuple[str, Engine, object]]:
    short, _ = build_policy_set([(f"{p['process']}.yaml", p) for p in POLICIES], CALENDARS)
    long, _ = build_policy_set([(f"{p['process']}.yaml", p) for p in LONG_POLICIES])
    e_short, e_long = Engine(short), Engine(long)
    trace, t = [], 0
    for i in range(100):  # 100 runs one after the other, the last still open: 199 events
        node = LONG_NODES[(i * 7) % len(LONG_NODES)]
        trace.append(("node_started", node, t))
        if i < 99:
            t += 300
            trace.append(("node_completed", node, t))
    return [
        ("one open run (+ order run)", e_short, build(e_short, "install", [("node_started", "survey", 0)])),
        ("half-way, paused, 5 events", e_short, build(e_short, "install", [
            ("node_started", "survey", 0), ("node_completed", "survey", 3600), ("node_started", "install", 3600),
            ("node_paused", "install", 7200), ("node_resumed", "install", 9000)])),
        ("office calendar, 3 events", e_short, build(e_short, "support", [
            ("node_started", "triage", 0), ("node_completed", "triage", 600), ("node_started", "fix", 600)],
            attrs={"priority": "P2", "channel": "web"})),
        ("long trace, 199 events", e_long, build(e_long, "loan_application", trace, attrs={"org:resource": "10012"})),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="best of N timings (default 5)")
    ap.add_argument("--number", type=int, default=20_000, help="operations per timing (default 20,000)")
    args = ap.parse_args()
    print(f"{'state':32s} {'bytes':>6s} {'encode':>9s} {'decode':>9s} {'both':>9s}")
    for name, engine, state in states():
        data = dump_state(state)  # type: ignore[arg-type]
        assert dump_state(load_state(data, engine)) == data
        enc = min(timeit.repeat(lambda s=state: dump_state(s), number=args.number, repeat=args.repeat))
        dec = min(timeit.repeat(lambda d=data, e=engine: load_state(d, e), number=args.number, repeat=args.repeat))
        enc, dec = enc / args.number * 1e6, dec / args.number * 1e6
        print(f"{name:32s} {len(data):6d} {enc:7.2f}us {dec:7.2f}us {enc + dec:7.2f}us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
