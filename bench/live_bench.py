"""Live benchmark: one worker on the local broker, side by side with a plain aiokafka consume-and-produce loop.

1. Backlog throughput: N events are written to `workflow.events` first; then (a) a plain aiokafka loop consumes
   them in a consumer group, decodes each with orjson and produces a small record per event (the ceiling of a
   Python consumer), and (b) one `slamon worker` processes the same topic. Events per second of each, and the ratio.
2. Live: events are produced at a steady rate (with `at` = now) for a while; every node run has a 2 s commitment
   and about a third of them breach it. Reports the consumer lag seen during the run and the distribution of
   detected_at - crossed_at of the announced crossings.

Run with `make bench` or `.venv/bin/python bench/live_bench.py [--events N] [--rate R] [--seconds S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POLICY = """process: bench
nodes:
  a: {commitment: 2s, tolerance: 4s}
  b: {commitment: 2s, tolerance: 4s}
"""


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def order_events(i: int, t: float, rng: random.Random) -> list[tuple[float, dict]]:
    o = f"o{i}"
    out = []
    for node in ("a", "b"):
        d = rng.choice([0.5, 1.0, 1.5, 3.0])  # about a quarter breach the 2 s commitment
        out.append((t, {"event_id": f"{o}{node}s", "order_id": o, "process": "bench", "type": "node_started",
                        "node": node, "at": utc(t)}))
        t += d
        out.append((t, {"event_id": f"{o}{node}c", "order_id": o, "process": "bench", "type": "node_completed",
                        "node": node, "at": utc(t)}))
    return out


async def produce_backlog(bootstrap: str, topic: str, n: int) -> None:
    from aiokafka import AIOKafkaProducer

    rng = random.Random(1)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await p.start()
    try:
        t0 = time.time() - 3600
        batch = []
        for i in range(n // 4):
            for _, e in order_events(i, t0 + i * 0.01, rng):
                batch.append(p.send(topic, key=e["order_id"].encode(), value=orjson.dumps(e)))
            if len(batch) > 5000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
    finally:
        await p.stop()


async def plain_loop(bootstrap: str, topic: str, out_topic: str, n: int) -> float:
    """Consume n messages in a group, decode each, produce one small record each; seconds taken."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"plain-{uuid.uuid4().hex[:6]}",
                         auto_offset_reset="earliest", max_poll_records=1000, enable_auto_commit=True)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await c.start()
    await p.start()
    try:
        seen = 0
        start = None
        while seen < n:
            batches = await c.getmany(timeout_ms=1000, max_records=1000)
            for msgs in batches.values():
                if start is None:
                    start = time.perf_counter()
                for m in msgs:
                    e = orjson.loads(m.value)
                    await p.send(out_topic, key=m.key, value=orjson.dumps({"order_id": e["order_id"], "seen": 1}))
                    seen += 1
        await p.flush()
        return time.perf_counter() - (start or time.perf_counter())
    finally:
        await c.stop()
        await p.stop()


def metric(port: int, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        body = r.read().decode()
    return sum(s.value for f in text_string_to_metric_families(body) for s in f.samples if s.name == name)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "worker"], cwd=ROOT, env={**os.environ, **env},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    port = int(env["SLAMON_WEB_PORT"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"worker exited: see {log}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("worker not ready in 120 s")


async def group_lag(bootstrap: str, group: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await c.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        tps = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or []]
        ends = await c.end_offsets(tps)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
    finally:
        await admin.close()
        await c.stop()


async def live_phase(bootstrap: str, prefix: str, group: str, rate: float, seconds: float) -> tuple[list[float], int]:
    from aiokafka import AIOKafkaProducer

    rng = random.Random(2)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await p.start()
    pending: list[tuple[float, dict]] = []
    max_lag = 0
    try:
        start = time.time()
        i = 10_000_000
        next_lag = start
        while time.time() - start < seconds or pending:
            now = time.time()
            if now - start < seconds:
                want = int((now - start) * rate / 4)  # 4 events per order
                while i - 10_000_000 < want:
                    pending.extend(order_events(i, now, rng))
                    i += 1
                pending.sort(key=lambda x: x[0])
            while pending and pending[0][0] <= now:
                _, e = pending.pop(0)
                await p.send(f"{prefix}workflow.events", key=e["order_id"].encode(), value=orjson.dumps(e))
            if now >= next_lag:
                max_lag = max(max_lag, await group_lag(bootstrap, group, f"{prefix}workflow.events"))
                next_lag = now + 1
            await asyncio.sleep(0.005)
        await p.flush()
    finally:
        await p.stop()
    return [], max_lag


async def read_delays(bootstrap: str, topic: str) -> list[float]:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await c.start()
    out = []
    try:
        while True:
            batches = await c.getmany(timeout_ms=2000)
            if not batches:
                break
            for msgs in batches.values():
                for m in msgs:
                    w = orjson.loads(m.value)
                    if w["kind"] != "resolved":
                        out.append((datetime.fromisoformat(w["detected_at"])
                                    - datetime.fromisoformat(w["crossed_at"])).total_seconds())
    finally:
        await c.stop()
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * (len(values) - 1) + 0.5))]


def main() -> int:
    ap = argparse.ArgumentParser(description="live benchmark of one slamon worker")
    ap.add_argument("--events", type=int, default=200_000, help="backlog events (default 200,000)")
    ap.add_argument("--rate", type=float, default=2000, help="live phase: events per second (default 2000)")
    ap.add_argument("--seconds", type=float, default=30, help="live phase duration (default 30)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--tick", type=float, default=1.0, help="tick interval of the worker (default 1.0 s)")
    args = ap.parse_args()
    from monitor.localstack import up

    info = up()
    tmp = Path(tempfile.mkdtemp(prefix="slamon-bench-"))
    (tmp / "policies").mkdir()
    (tmp / "policies" / "bench.yaml").write_text(POLICY)
    run = uuid.uuid4().hex[:6]

    def worker_env(prefix: str, port: int) -> dict[str, str]:
        return {**info.env, "SLAMON_TOPIC_PREFIX": prefix, "SLAMON_APP_ID": prefix.rstrip("."),
                "SLAMON_POLICIES": str(tmp / "policies"), "SLAMON_PARTITIONS": str(args.partitions),
                "SLAMON_STORE": "memory://", "SLAMON_WEB_PORT": str(port), "SLAMON_TICK_INTERVAL": str(args.tick),
                "SLAMON_DATA_DIR": str(tmp / "data"), "SLAMON_LOG_LEVEL": "warning"}

    # 1. backlog: create topics by starting a worker once, stop it, fill the topic, then race both consumers
    prefix = f"bench{run}."
    w = start_worker(worker_env(prefix, 16801), tmp / "w0.log")
    w.terminate()
    w.wait(30)
    print(f"backlog: producing {args.events:,} events to {prefix}workflow.events ...", flush=True)
    asyncio.run(produce_backlog(info.kafka_bootstrap, f"{prefix}workflow.events", args.events))
    plain_s = asyncio.run(plain_loop(info.kafka_bootstrap, f"{prefix}workflow.events", f"{prefix}plain.out", args.events))
    plain_rate = args.events / plain_s
    print(f"plain aiokafka consume+decode+produce loop: {args.events:,} events in {plain_s:.1f} s = {plain_rate:,.0f} events/s",
          flush=True)
    w = start_worker(worker_env(prefix, 16802), tmp / "w1.log")
    t0 = time.perf_counter()
    try:
        while metric(16802, "sla_events_total") + metric(16802, "sla_invalid_events_total") < args.events:
            time.sleep(0.25)
        worker_s = time.perf_counter() - t0
    finally:
        w.terminate()
        w.wait(30)
    worker_rate = args.events / worker_s
    print(f"slamon worker (memory store): {args.events:,} events in {worker_s:.1f} s = {worker_rate:,.0f} events/s "
          f"= {worker_rate / plain_rate:.2f} of the plain loop", flush=True)
    for mode, what in (("bare", "iterating only"), ("both", "one table write and one output per event")):
        r = subprocess.run([sys.executable, str(ROOT / "bench" / "faust_floor.py"), "worker", "-l", "warn"],
                           env={**os.environ, "FX_MODE": mode, "FX_B": info.kafka_bootstrap,
                                "FX_T": f"{prefix}workflow.events", "FX_N": str(args.events)},
                           capture_output=True, text=True, timeout=600)
        rate = next((float(x.split()[-1]) for x in (r.stdout + r.stderr).splitlines() if "faust-floor" in x), 0.0)
        print(f"minimal Faust agent, {what}: {rate:,.0f} events/s (slamon worker = {worker_rate / rate:.2f} of it)"
              if rate else f"minimal Faust agent ({mode}) did not report", flush=True)

    # 2. live: a steady rate with the worker keeping up; lag and detection delay
    prefix = f"benchlive{run}."
    w = start_worker(worker_env(prefix, 16803), tmp / "w2.log")
    try:
        print(f"live: {args.rate:,.0f} events/s for {args.seconds:.0f} s, tick {args.tick} s ...", flush=True)
        _, max_lag = asyncio.run(live_phase(info.kafka_bootstrap, prefix, prefix.rstrip("."), args.rate, args.seconds))
        time.sleep(4 + 2 * args.tick)  # let the last runs cross their limits
        delays = asyncio.run(read_delays(info.kafka_bootstrap, f"{prefix}sla.warnings"))
    finally:
        w.terminate()
        w.wait(30)
    if delays:
        print(f"live: {len(delays):,} crossings; detected_at - crossed_at: p50 {pct(delays, 0.5):.3f} s, "
              f"p90 {pct(delays, 0.9):.3f} s, p99 {pct(delays, 0.99):.3f} s, max {max(delays):.3f} s "
              f"(tick {args.tick} s); max consumer lag {max_lag:,} events; mean {statistics.fmean(delays):.3f} s")
    print(f"host: {os.cpu_count()} cores; broker, producer and worker share them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
