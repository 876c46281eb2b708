"""Live benchmark: one worker on the local broker, side by side with its peers, all on the same backlog.

1. Backlog throughput: N events are written to `workflow.events` first; then each of these reads the same topic
   in its own consumer group, one after the other:
   (a) a plain aiokafka loop that decodes each message with orjson and produces a small record per message (the
       ceiling of a Python consumer);
   (b) `slamon worker` of the baseline commit (before the batch path; `--baseline REV`, from `git archive`);
   (c) `slamon worker` of this checkout;
   (d) the same job on Quix Streams with our core (`bench/quix_peer.py`; at-least-once, and exactly-once as our
       worker is), when quixstreams is installed (`pip install -e '.[bench]'`).
   For each: events/s from its first to its N-th event (the drain rate; start-up and recovery excluded; for a
   worker, to the commit of its N-th event, read from the broker), the CPU
   seconds its process used meanwhile (events per CPU-second: steadier than wall time on a shared machine), and
   the ratio to the plain loop.
2. Live: events are produced at a steady rate, half the worker's measured drain rate unless `--rate` is given,
   for a while; every node run has a 2 s commitment and about a third of them breach it. Reports the consumer
   lag seen during the run and the distribution of detected_at - crossed_at of the announced crossings.

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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.localstack.procs import free_ports  # noqa: E402
from monitor.stream.writer import send_batches  # noqa: E402

BASELINE = "e01877b"  # the worker before the batch path (end of the first round)

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


def metric(port: int, *names: str) -> float:
    """The sum of the samples of `names` in one scrape of the worker's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        body = r.read().decode()
    return sum(s.value for f in text_string_to_metric_families(body) for s in f.samples if s.name in names)


def start_worker(env: dict[str, str], log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """`python -m monitor.cli worker` of the source tree `cwd` (its `monitor/` comes first on the path)."""
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "worker"], cwd=cwd, env={**os.environ, **env},
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


class GroupLag:
    """Consumer lag of a group on a topic (end offsets minus committed offsets), on clients kept open."""

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int):
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        self.group, self.topic, self.partitions = group, topic, partitions
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)

    async def __aenter__(self) -> GroupLag:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()
        await self.consumer.stop()

    async def lag(self) -> int:
        from aiokafka import TopicPartition

        committed = await self.admin.list_consumer_group_offsets(self.group)
        # (not partitions_for_topic: a consumer that subscribed to nothing has no metadata for the topic, and
        # the lag would always read 0)
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        ends = await self.consumer.end_offsets(tps)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)


async def live_phase(bootstrap: str, prefix: str, group: str, rate: float, seconds: float,
                     partitions: int) -> tuple[list[float], int]:
    """Produce orders at `rate` events/s for `seconds`, each event when its `at` comes. Returns how late each
    event was written (seconds after its `at`) and the largest consumer lag seen (sampled every second)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    rng = random.Random(2)
    start = time.time() + 1.0
    schedule: list[tuple[float, dict]] = []
    for k in range(int(rate * seconds / 4)):  # 4 events per order
        schedule.extend(order_events(10_000_000 + k, start + k * 4 / rate, rng))
    schedule.sort(key=lambda x: x[0])
    topic = f"{prefix}workflow.events"
    payloads = [(t, e["order_id"].encode(), orjson.dumps(e)) for t, e in schedule]
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await p.start()
    late: list[float] = []
    max_lag = 0
    # The producer shares the 2 cores with the broker and the worker: it sends each 2 ms step's due events as record
    # batches per partition (the writer's send_batches), the partition of each order chosen once by the default
    # partitioner, as send() would.
    partitioner = DefaultPartitioner()
    parts = sorted(await p.partitions_for(topic))
    partition_of: dict[bytes, int] = {}
    try:
        async with GroupLag(bootstrap, group, topic, partitions) as lag:
            i, next_lag = 0, start
            while i < len(payloads):
                now = time.time()
                due: dict[int, list[tuple[bytes, bytes]]] = {}
                while i < len(payloads) and payloads[i][0] <= now:
                    t, key, value = payloads[i]
                    part = partition_of.get(key)
                    if part is None:
                        part = partition_of[key] = partitioner(key, parts, parts)
                    due.setdefault(part, []).append((key, value))
                    late.append(now - t)
                    i += 1
                for part, messages in due.items():
                    await send_batches(p, topic, part, messages)
                if now >= next_lag:
                    max_lag = max(max_lag, await lag.lag())
                    next_lag = now + 1
                await asyncio.sleep(0.002)
            await p.flush()
    finally:
        await p.stop()
    return late, max_lag


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


class Drain:
    """One consumer's run through the backlog: wall seconds and CPU seconds from its first to its N-th event (a
    worker: to the commit of its N-th event)."""

    def __init__(self, name: str, events: int, wall: float, cpu: float | None):
        self.name, self.events, self.wall, self.cpu = name, events, wall, cpu

    @property
    def rate(self) -> float:
        return self.events / self.wall if self.wall > 0 else 0.0

    def line(self, plain: float | None) -> str:
        cpu = f"; {self.cpu:.1f} CPU-s = {self.events / self.cpu:,.0f} events per CPU-second" if self.cpu else ""
        ratio = f" = {self.rate / plain:.2f} of the plain loop" if plain else ""
        return f"{self.name}: {self.events:,} events in {self.wall:.1f} s = {self.rate:,.0f} events/s{ratio}{cpu}"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain_worker(name: str, env: dict[str, str], cwd: Path, log: Path, events: int, partitions: int) -> Drain:
    """Start a worker on a filled topic and time it from its first event processed (its /metrics scraped every
    0.05 s until then) to the commit of its last (the group's committed offsets polled from the broker every
    0.05 s: scraping the worker that often while it drains cost it a few percent of its time)."""
    return asyncio.run(_drain_worker(name, env, cwd, log, events, partitions))


async def _drain_worker(name: str, env: dict[str, str], cwd: Path, log: Path, events: int, partitions: int) -> Drain:
    port = int(env["SLAMON_WEB_PORT"])
    w = start_worker(env, log, cwd)
    try:
        deadline = time.monotonic() + 1800

        def check(what: str) -> None:
            if w.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name}: {what}; see {log}")

        while metric(port, "sla_events_total", "sla_invalid_events_total") == 0:
            check("no event processed")
            await asyncio.sleep(0.05)
        t1, c1 = time.perf_counter(), cpu_seconds(w.pid)
        async with GroupLag(env["SLAMON_KAFKA_BOOTSTRAP"], env["SLAMON_APP_ID"],
                            f"{env['SLAMON_TOPIC_PREFIX']}workflow.events", partitions) as group:
            while await group.lag() > 0:
                check("stopped before the end of the backlog")
                await asyncio.sleep(0.05)
        return Drain(name, events, time.perf_counter() - t1, cpu_seconds(w.pid) - c1)
    finally:
        w.terminate()
        w.wait(60)


def drain_quix(bootstrap: str, topic: str, policies: Path, events: int, guarantee: str, log: Path) -> Drain | None:
    try:
        import quixstreams  # noqa: F401
    except ImportError:
        print("Quix Streams peer: skipped (pip install -e '.[bench]' installs quixstreams)", flush=True)
        return None
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "quix_peer.py"), "--bootstrap", bootstrap,
                        "--topic", topic, "--out", f"{topic}.quix-{uuid.uuid4().hex[:4]}", "--policies",
                        str(policies), "--events", str(events), "--guarantee", guarantee],
                       capture_output=True, text=True, timeout=1800)
    log.write_text(r.stdout + r.stderr)
    result = next((orjson.loads(x) for x in r.stdout.splitlines() if x.startswith("{")), None)
    if r.returncode != 0 or result is None:
        print(f"Quix Streams peer ({guarantee}) failed: see {log}", flush=True)
        return None
    return Drain(f"Quix Streams peer with our core ({guarantee})", result["events"],
                 result["last"] - result["first"], result["cpu_last"] - result["cpu_first"])


def baseline_tree(rev: str, into: Path) -> Path | None:
    """The baseline commit's `monitor/` and `topics/`, from git (None outside a git checkout)."""
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "monitor", "topics"],
                                 capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"baseline {rev}: not available ({exc})", flush=True)
        return None
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> int:
    ap = argparse.ArgumentParser(description="live benchmark of one slamon worker against its peers")
    ap.add_argument("--events", type=int, default=100_000, help="backlog events (default 100,000)")
    ap.add_argument("--rate", type=float, default=0,
                    help="live phase: events per second (default: half the worker's measured drain rate)")
    ap.add_argument("--seconds", type=float, default=30, help="live phase duration (default 30)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--tick", type=float, default=1.0, help="tick interval of the worker (default 1.0 s)")
    ap.add_argument("--baseline", default=BASELINE, help=f"git revision of the baseline worker (default {BASELINE}"
                    ", the worker before the batch path); '' skips it")
    ap.add_argument("--floor", action="store_true", help="also run a minimal Faust agent on the backlog")
    ap.add_argument("--live-only", action="store_true", help="only the live phase (needs --rate)")
    args = ap.parse_args()
    if args.live_only and not args.rate:
        ap.error("--live-only needs --rate")
    from monitor.localstack import down, up

    tmp = Path(tempfile.mkdtemp(prefix="slamon-bench-"))
    # a stack of its own (a few seconds to start), stopped and removed at the end: the bench neither fills a
    # user's stack with its topics nor leaves servers running
    info = up(tmp / "stack")
    try:
        return run_phases(args, info, tmp)
    finally:
        down(tmp / "stack")


def run_phases(args: argparse.Namespace, info: Any, tmp: Path) -> int:
    policies = tmp / "policies"
    policies.mkdir()
    (policies / "bench.yaml").write_text(POLICY)
    run = uuid.uuid4().hex[:6]

    def worker_env(prefix: str, port: int, app_id: str | None = None) -> dict[str, str]:
        return {**info.env, "SLAMON_TOPIC_PREFIX": prefix, "SLAMON_APP_ID": app_id or prefix.rstrip("."),
                "SLAMON_POLICIES": str(policies), "SLAMON_PARTITIONS": str(args.partitions),
                "SLAMON_STORE": "memory://", "SLAMON_WEB_PORT": str(port), "SLAMON_TICK_INTERVAL": str(args.tick),
                "SLAMON_DATA_DIR": str(tmp / f"data-{port}"), "SLAMON_LOG_LEVEL": "warning"}

    if not args.live_only:
        ours = backlog_phase(args, info, tmp, policies, run, worker_env)
    live_phase_report(args, info, tmp, run, worker_env, args.rate or round(ours.rate / 2))
    print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; broker, producer and consumers "
          "share them")
    return 0


def backlog_phase(args: argparse.Namespace, info: Any, tmp: Path, policies: Path, run: str,
                  worker_env: Callable[..., dict[str, str]]) -> Drain:
    """Each consumer in turn through the same backlog; returns the worker's drain."""
    # create the topics by starting a worker once, fill the events topic, then each consumer in turn
    prefix = f"bench{run}."
    events_topic = f"{prefix}workflow.events"
    w = start_worker(worker_env(prefix, free_ports(1)[0]), tmp / "w0.log")
    w.terminate()
    w.wait(30)
    print(f"backlog: producing {args.events:,} events to {events_topic} ...", flush=True)
    asyncio.run(produce_backlog(info.kafka_bootstrap, events_topic, args.events))
    plain_s = asyncio.run(plain_loop(info.kafka_bootstrap, events_topic, f"{prefix}plain.out", args.events))
    plain = Drain("plain aiokafka consume+decode+produce loop", args.events, plain_s, None)
    print(plain.line(None), flush=True)
    if args.baseline and (tree := baseline_tree(args.baseline, tmp / "baseline")) is not None:
        base = drain_worker(f"slamon worker at {args.baseline} (baseline)",
                            worker_env(prefix, free_ports(1)[0], f"{prefix}base"), tree, tmp / "w-base.log", args.events,
                            args.partitions)
        print(base.line(plain.rate), flush=True)
    else:
        base = None
    ours = drain_worker("slamon worker (this checkout, memory store)", worker_env(prefix, free_ports(1)[0]), ROOT,
                        tmp / "w1.log", args.events, args.partitions)
    print(ours.line(plain.rate) + (f"; {ours.rate / base.rate:.2f}x the baseline's events/s, "
                                   f"{base.cpu / ours.cpu:.2f}x its events per CPU-second" if base else ""),
          flush=True)
    for guarantee in ("at-least-once", "exactly-once"):
        peer = drain_quix(info.kafka_bootstrap, events_topic, policies, args.events, guarantee,
                          tmp / f"quix-{guarantee}.log")
        if peer is not None:
            print(peer.line(plain.rate) + f"; slamon worker = {ours.rate / peer.rate:.2f} of its events/s, "
                  f"{peer.cpu / ours.cpu:.2f} of its events per CPU-second", flush=True)
    if args.floor:
        r = subprocess.run([sys.executable, str(ROOT / "bench" / "faust_floor.py"), "worker", "-l", "warn"],
                           env={**os.environ, "FX_MODE": "bare", "FX_B": info.kafka_bootstrap,
                                "FX_T": events_topic, "FX_N": str(args.events)},
                           capture_output=True, text=True, timeout=600)
        rate = next((float(x.split()[-1]) for x in (r.stdout + r.stderr).splitlines() if "faust-floor" in x), 0.0)
        print(f"minimal Faust agent, iterating only: {rate:,.0f} events/s" if rate else
              "minimal Faust agent did not report", flush=True)
    return ours


def live_phase_report(args: argparse.Namespace, info: Any, tmp: Path, run: str,
                      worker_env: Callable[..., dict[str, str]], rate: float) -> None:
    """A steady rate (half the measured capacity by default): consumer lag and detection delay."""
    prefix = f"benchlive{run}."
    w = start_worker(worker_env(prefix, free_ports(1)[0]), tmp / "w2.log")
    try:
        print(f"live: {rate:,.0f} events/s for {args.seconds:.0f} s, tick {args.tick} s ...", flush=True)
        c0, t0, p0 = cpu_seconds(w.pid), time.monotonic(), time.process_time()
        late, max_lag = asyncio.run(live_phase(info.kafka_bootstrap, prefix, prefix.rstrip("."), rate,
                                               args.seconds, args.partitions))
        share = (cpu_seconds(w.pid) - c0) / (time.monotonic() - t0)
        producer_share = (time.process_time() - p0) / (time.monotonic() - t0)
        time.sleep(4 + 2 * args.tick)  # let the last runs cross their limits
        delays = asyncio.run(read_delays(info.kafka_bootstrap, f"{prefix}sla.warnings"))
    finally:
        w.terminate()
        w.wait(30)
    if delays:
        print(f"live: {len(delays):,} crossings; detected_at - crossed_at: p50 {pct(delays, 0.5):.3f} s, "
              f"p90 {pct(delays, 0.9):.3f} s, p99 {pct(delays, 0.99):.3f} s, max {max(delays):.3f} s "
              f"(tick {args.tick} s); max consumer lag {max_lag:,} events; mean {statistics.fmean(delays):.3f} s; "
              f"the worker used {share:.0%} of a core, the producer {producer_share:.0%}")
    if late:
        print(f"live: the producer wrote events after their `at` by p50 {pct(late, 0.5):.3f} s, p99 "
              f"{pct(late, 0.99):.3f} s, max {max(late):.3f} s (part of the delays above when large)")


if __name__ == "__main__":
    sys.exit(main())
