"""Replay benchmark: 1,000,000 events over 100,000 orders through `slamon replay`'s code path.

Prints events per second, peak memory of the process, and the memory and serialised size of an order state
with one open run. Run with `make bench` (or `.venv/bin/python bench/replay_bench.py [--events N]`).

`--shape long` replays a log of the shape of BPIC 2012 instead (few orders with long traces over many nodes: by
default 1,000,000 events over 5,000 orders, 200 events each, 24 nodes visited again and again, every event with an
attribute, as `slamon import xes` writes them). `--write-policies DIR` writes the shape's policy directory, for
`slamon replay --policies DIR --events FILE`.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.core.engine import Engine, dump_state  # noqa: E402
from monitor.core.events import Event  # noqa: E402
from monitor.core.instants import format_instant, parse_instant  # noqa: E402
from monitor.core.policies import build_policy_set  # noqa: E402
from monitor.core.replay import ReplaySink  # noqa: E402
from monitor.eventlog import replay_file  # noqa: E402

POLICIES = [
    {"process": "install", "early_warning": 0.8, "order": {"commitment": "2d", "tolerance": "4d"},
     "nodes": {"survey": {"commitment": "4h", "tolerance": "8h"}, "install": {"commitment": "1d", "tolerance": "2d"},
               "verify": {"commitment": "2h", "tolerance": "3h"}, "bill": {"commitment": "1h", "tolerance": "4h"}}},
    {"process": "support", "calendar": "office",
     "nodes": {"triage": {"commitment": "30m", "tolerance": "1h"}, "fix": {"commitment": "8h", "tolerance": "16h"},
               "confirm": {"commitment": "2h", "tolerance": "4h"}, "close": {"commitment": "1h", "tolerance": "2h"}}},
]
CALENDARS = {"calendars": {"office": {"timezone": "Europe/Berlin", "hours": {
    d: ["08:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, "holidays": ["2026-05-01"]}}}
POLICY_YAML = {p["process"]: p for p in POLICIES}

# The long-trace shape (BPIC 2012): application steps of no duration (`a_*`, `o_*`) and work items that take time
# (`w_*`), 24 nodes in all, on a 24x7 calendar, with an order-level SLA.
LONG_NODES = [f"a_step_{i:02d}" for i in range(8)] + [f"o_step_{i:02d}" for i in range(8)] + \
    [f"w_step_{i:02d}" for i in range(8)]
LONG_POLICIES = [
    {"process": "loan_application", "early_warning": 0.8, "order": {"commitment": "20d", "tolerance": "30d"},
     "nodes": {n: {"commitment": "30m", "tolerance": "2h"} if n.startswith("w_") else
               {"commitment": "1m", "tolerance": "5m"} for n in LONG_NODES}},
]
SHAPES = {"orders": (POLICIES, CALENDARS, 100_000), "long": (LONG_POLICIES, None, 5_000)}


def generate(path: Path, n_events: int, n_orders: int, seed: int = 1) -> None:
    """Orders of 10 events (4 nodes started and completed, one pause and resume), interleaved in time."""
    rng = random.Random(seed)
    start = parse_instant("2026-04-01T00:00:00Z")
    span = 30 * 86400 * 1_000_000
    rows: list[tuple[int, bytes]] = []
    per_order = max(1, n_events // n_orders)
    seq = 0
    for o in range(n_orders):
        process = POLICIES[o % 2]
        nodes = list(process["nodes"])
        t = start + rng.randrange(span)
        evs = []
        for i, node in enumerate(nodes):
            evs.append(("node_started", node, t))
            if i == 1:
                t += rng.randrange(60, 7200) * 1_000_000
                evs.append(("node_paused", node, t))
                t += rng.randrange(60, 7200) * 1_000_000
                evs.append(("node_resumed", node, t))
            t += int(rng.expovariate(1 / 3600) * 1_000_000) + 1_000_000
            evs.append(("node_completed", node, t))
        for etype, node, at in evs[:per_order]:
            seq += 1
            rows.append((at, orjson.dumps({"event_id": f"e{seq}", "order_id": f"order-{o}", "process": process["process"],
                                           "type": etype, "node": node, "at": format_instant(at),
                                           "segment": "gold" if o % 7 == 0 else "default"})))
    rows.sort(key=lambda r: r[0])
    with path.open("wb") as f:
        for _, line in rows:
            f.write(line + b"\n")


def generate_long(path: Path, n_events: int, n_orders: int, seed: int = 1) -> None:
    """Orders of n_events / n_orders events: runs one after the other, each node visited many times (a work item
    `w_*` takes minutes to hours, the others no time), every event with an `org:resource` attribute; event ids as
    `slamon import xes` writes them (`{order_id}:{index}`). Interleaved in time over 90 days."""
    rng = random.Random(seed)
    start = parse_instant("2026-01-02T00:00:00Z")
    span = 90 * 86400 * 1_000_000
    rows: list[tuple[int, bytes]] = []
    per_order = max(2, n_events // n_orders)
    for o in range(n_orders):
        order_id = f"application_{200000 + o}"
        t = start + rng.randrange(span)
        node = rng.choice(LONG_NODES)
        for i in range(0, per_order - 1, 2):
            if rng.random() < 0.4:  # a step revisited (calls, completions repeated), else another one
                node = rng.choice(LONG_NODES)
            took = int(rng.expovariate(1 / 1800) * 1_000_000) if node.startswith("w_") else 0
            attrs = {"org:resource": str(rng.randrange(10000, 10060))}
            for j, (etype, at) in enumerate((("node_started", t), ("node_completed", t + took))):
                rows.append((at, orjson.dumps({"event_id": f"{order_id}:{i + j}", "order_id": order_id,
                                               "process": "loan_application", "type": etype, "node": node,
                                               "at": format_instant(at), "attrs": attrs})))
            t += took + rng.randrange(0, 600) * 1_000_000
    rows.sort(key=lambda r: r[0])
    with path.open("wb") as f:
        for _, line in rows:
            f.write(line + b"\n")


def write_policies(directory: Path, policies: list[dict], calendars: dict | None) -> None:
    """The policy directory of a shape (YAML files in JSON syntax)."""
    directory.mkdir(parents=True, exist_ok=True)
    for p in policies:
        (directory / f"{p['process']}.yaml").write_bytes(orjson.dumps(p))
    if calendars:
        (directory / "calendars.yaml").write_bytes(orjson.dumps(calendars))


def open_run_memory(policies, n: int = 20000) -> tuple[float, float]:
    """Bytes of Python memory and of serialised state per order holding one open run."""
    engine, sink = Engine(policies), ReplaySink()
    at = parse_instant("2026-04-01T08:00:00Z")
    events = [Event(f"evt-{i:08d}-5c1f", f"order-{i:08d}", "install", "node_started", "survey", at + i)
              for i in range(n)]
    gc.collect()
    tracemalloc.start()
    states = {}
    for e in events:
        states[e.order_id], _ = engine.apply(None, e, sink)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    serialised = sum(len(dump_state(s)) for s in states.values()) / n
    return current / n, serialised


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="orders",
                    help="orders: many short orders (default); long: few orders with long traces (BPIC 2012)")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, help="default 100,000 (5,000 with --shape long)")
    ap.add_argument("--data", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--write-policies", metavar="DIR", help="also write the shape's policy directory to DIR")
    args = ap.parse_args()
    docs, calendars, default_orders = SHAPES[args.shape]
    orders = args.orders or default_orders
    out = Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    path = out / (f"replay-{args.events}-{orders}.jsonl" if args.shape == "orders" else
                  f"replay-{args.shape}-{args.events}-{orders}.jsonl")
    if not path.exists():
        print(f"generating {args.events:,} events over {orders:,} orders -> {path}", flush=True)
        (generate if args.shape == "orders" else generate_long)(path, args.events, orders)
    if args.write_policies:
        write_policies(Path(args.write_policies), docs, calendars)
    n_lines = sum(1 for _ in path.open("rb"))
    policies, _ = build_policy_set([(f"{p['process']}.yaml", p) for p in docs], calendars)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    result = replay_file(policies, str(path))
    elapsed = time.perf_counter() - t0
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    runs = sum(r["total"] for r in result["summary"])
    print(f"replay: {n_lines:,} events, {runs:,} runs, {len(result['warnings']):,} warnings in {elapsed:.2f} s "
          f"= {n_lines / elapsed:,.0f} events/s (one core, {sys.implementation.name} {sys.version.split()[0]})")
    print(f"replay: peak RSS {rss_peak / 1024:,.0f} MiB (before the replay {rss_before / 1024:,.0f} MiB)")
    py_bytes, ser_bytes = open_run_memory(build_policy_set([(f"{p['process']}.yaml", p) for p in POLICIES],
                                                           CALENDARS)[0])
    print(f"state: {py_bytes:,.0f} bytes of Python memory and {ser_bytes:,.0f} bytes serialised per order with one open run")
    print(f"host: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
