"""`slamon demo`: the local stack, one worker, sample policies, generated orders, and warnings as they happen."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "deploy" / "demo" / "policies"
FLOWS = {
    "broadband_install": (["site_survey", "installation", "activation"], {"site_survey": 6, "installation": 10,
                                                                         "activation": 4}),
    "support_ticket": (["triage", "resolve", "confirm"], {"triage": 3, "resolve": 12, "confirm": 5}),
}
COLORS = {"approaching": "\033[33m", "commitment_breached": "\033[35m", "tolerance_breached": "\033[31;1m",
          "resolved": "\033[32m"}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the local stack, a worker and an order generator, and show warnings live",
        description="Start (or reuse) the local Kafka and Redis, start one worker with the sample policies in "
        "deploy/demo/policies, generate realistic orders (slow nodes, pauses, cancellations, a little bad "
        "input) and print every warning as it happens. Ctrl-C stops everything it started.",
    )
    p.add_argument("--rate", type=float, default=1.5, help="new orders per second (default 1.5)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--web-port", type=int, default=int(os.environ.get("SLAMON_WEB_PORT", "6066")),
                   help="worker web port for /metrics (default $SLAMON_WEB_PORT or 6066; 0 = any free port)")
    p.add_argument("--seed", type=int, default=None, help="random seed of the generator")
    p.set_defaults(func=_run)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _utc(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, UTC).isoformat().replace("+00:00", "Z")


class Generator:
    """Orders of two processes; about a quarter of node runs are slow, some are paused or cancelled."""

    def __init__(self, bootstrap: str, topic: str, rng: random.Random):
        self.bootstrap, self.topic, self.rng = bootstrap, topic, rng
        self.n = 0
        self.sent = 0
        self.run_id = f"{int(time.time()) % 100000:05d}"  # demo topics persist across runs: keep ids unique

    async def send(self, producer: Any, order: str, process: str, etype: str, node: str | None = None,
                   **extra: Any) -> None:
        self.sent += 1
        e = {"event_id": f"{order}-{self.sent}", "order_id": order, "process": process, "type": etype,
             "at": _utc(), **extra}
        if node:
            e["node"] = node
        await producer.send(self.topic, key=order.encode(), value=orjson.dumps(e))

    async def order(self, producer: Any) -> None:
        rng = self.rng
        self.n += 1
        process = rng.choice(list(FLOWS))
        nodes, typical = FLOWS[process]
        order = f"{process.split('_')[0][:4]}-{self.run_id}-{self.n:04d}"
        segment = "enterprise" if rng.random() < 0.2 else "default"
        for node in nodes:
            await self.send(producer, order, process, "node_started", node, segment=segment,
                            attrs={"region": rng.choice(["north", "south", "east", "west"])})
            slow = rng.random() < 0.25
            duration = typical[node] * (rng.uniform(1.1, 2.2) if slow else rng.uniform(0.2, 0.9))
            if rng.random() < 0.1:  # waiting for the customer: the clock stops
                await asyncio.sleep(duration / 2)
                await self.send(producer, order, process, "node_paused", node)
                await asyncio.sleep(rng.uniform(3, 8))
                await self.send(producer, order, process, "node_resumed", node)
                await asyncio.sleep(duration / 2)
            else:
                await asyncio.sleep(duration)
            if rng.random() < 0.04:
                await self.send(producer, order, process, "order_cancelled")
                return
            await self.send(producer, order, process, "node_completed", node)
        await self.send(producer, order, process, "order_completed")

    async def bad_input(self, producer: Any) -> None:
        kind = self.rng.choice(["not json", "unknown node", "no offset"])
        if kind == "not json":
            await producer.send(self.topic, key=b"junk", value=b"<event>oops</event>")
        elif kind == "unknown node":
            await self.send(producer, "junk-1", "support_ticket", "node_started", "escalate")
        else:
            await producer.send(self.topic, key=b"junk", value=orjson.dumps({
                "event_id": f"junk-{self.sent}", "order_id": "junk", "process": "support_ticket",
                "type": "node_started", "node": "triage", "at": "2026-11-21 08:00:00"}))

    async def run(self, rate: float) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        tasks: set[asyncio.Task] = set()
        try:
            while True:
                t = asyncio.create_task(self.order(producer))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                if self.rng.random() < 0.03:
                    await self.bad_input(producer)
                await asyncio.sleep(self.rng.expovariate(rate))
        finally:
            for t in tasks:
                t.cancel()
            await producer.stop()


async def live_view(bootstrap: str, prefix: str, color: bool) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(f"{prefix}sla.warnings", f"{prefix}sla.deadletter", bootstrap_servers=bootstrap,
                                group_id=None, auto_offset_reset="latest")
    await consumer.start()
    try:
        async for m in consumer:
            v = orjson.loads(m.value)
            if m.topic.endswith("deadletter"):
                print(f"{v['received_at'][11:19]}  dead letter          {v['reason']}: {v['detail'][:70]}", flush=True)
                continue
            kind = v["kind"]
            label = kind.replace("_", " ").upper()
            where = f"{v['process']}/{v['node']}"
            limit = {"approaching": "early warning", "commitment_breached": f"commitment {v['commitment_s']:g}s",
                     "tolerance_breached": f"tolerance {v['tolerance_s']:g}s", "resolved": v["state"]}[kind]
            delay = (datetime.fromisoformat(v["detected_at"]) - datetime.fromisoformat(v["crossed_at"])).total_seconds()
            line = (f"{v['crossed_at'][11:19]}  {label:<20} {where:<34} {v['order_id']} run {v['run']}  "
                    f"elapsed {v['elapsed_s']:6.1f}s  ({limit}; owner {v['owner'] or '-'}; "
                    f"{'+' if kind != 'resolved' else ''}{delay:.2f}s)")
            print(f"{COLORS[kind]}{line}\033[0m" if color else line, flush=True)
    finally:
        await consumer.stop()


def _run(args: argparse.Namespace) -> int:
    from .localstack import up

    info = up()
    port = args.web_port or _free_port()
    prefix = "demo."
    data = ROOT / ".stack" / "demo-data"
    log_path = ROOT / ".stack" / "demo-worker.log"
    log_path.parent.mkdir(exist_ok=True)
    env = {**os.environ, **info.env, "SLAMON_TOPIC_PREFIX": prefix, "SLAMON_APP_ID": "slamon-demo",
           "SLAMON_POLICIES": str(POLICIES), "SLAMON_TICK_INTERVAL": "0.5", "SLAMON_WEB_PORT": str(port),
           "SLAMON_DATA_DIR": str(data), "SLAMON_STORE": os.environ.get("SLAMON_STORE", "rocksdb://"),
           "SLAMON_API_TOKEN": os.environ.get("SLAMON_API_TOKEN", "demo-token")}
    children: list[subprocess.Popen] = []

    def spawn(args: list[str], log_name: str, extra: dict[str, str] | None = None) -> subprocess.Popen:
        with (ROOT / ".stack" / log_name).open("ab") as log:
            p = subprocess.Popen(args, env={**env, **(extra or {})}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        children.append(p)
        return p

    am_exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    am_port = _free_port()
    if am_exe:
        env["SLAMON_ALERTMANAGER_URL"] = f"http://127.0.0.1:{am_port}"
        spawn([am_exe, f"--config.file={ROOT / 'deploy/alertmanager/alertmanager.yml'}",
               f"--storage.path={ROOT / '.stack' / 'demo-alertmanager'}", f"--web.listen-address=127.0.0.1:{am_port}",
               "--cluster.listen-address="], "demo-alertmanager.log")
    print(f"demo: starting a worker, the board{' and the notifier' if am_exe else ''} "
          f"(logs: .stack/demo-*.log)", flush=True)
    worker = spawn([sys.executable, "-m", "monitor.cli", "worker"], "demo-worker.log")
    spawn([sys.executable, "-m", "monitor.cli", "board"], "demo-board.log")
    if am_exe:
        spawn([sys.executable, "-m", "monitor.cli", "notifier", "--lease", "60", "--resend", "15"],
              "demo-notifier.log")
    try:
        deadline = time.monotonic() + 120
        while True:
            if worker.poll() is not None:
                print(f"demo: the worker exited ({worker.returncode}); see {log_path}", file=sys.stderr)
                return 1
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                    break
            if time.monotonic() > deadline:
                print("demo: the worker did not become ready in 120 s", file=sys.stderr)
                return 1
            time.sleep(0.5)
        print(f"demo: worker ready. Metrics: http://127.0.0.1:{port}/metrics  Readiness: "
              f"http://127.0.0.1:{port}/readyz", flush=True)
        if am_exe:
            print(f"demo: alerts in Alertmanager: http://127.0.0.1:{am_port}/#/alerts "
                  f"(API: http://127.0.0.1:{am_port}/api/v2/alerts)", flush=True)
        print(f"demo: the breach board: curl -H 'Authorization: Bearer {env['SLAMON_API_TOKEN']}' "
              f"'http://127.0.0.1:{port}/api/breaches?limit=5'", flush=True)
        print("demo: generating orders (Ctrl-C to stop). Warnings as they happen "
              "(crossed at, kind, process/node, order, elapsed, limit, owner, detection delay):\n", flush=True)
        asyncio.run(_main(info.kafka_bootstrap, prefix, args))
    except KeyboardInterrupt:
        print("\ndemo: stopping", flush=True)
    finally:
        for child in reversed(children):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if not info.reused:
            from .localstack import down

            down()
    return 0


async def _main(bootstrap: str, prefix: str, args: argparse.Namespace) -> None:
    gen = Generator(bootstrap, f"{prefix}workflow.events", random.Random(args.seed))
    tasks = [asyncio.create_task(gen.run(args.rate)),
             asyncio.create_task(live_view(bootstrap, prefix, sys.stdout.isatty()))]
    try:
        if args.duration:
            await asyncio.wait(tasks, timeout=args.duration, return_when=asyncio.FIRST_EXCEPTION)
        else:
            await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception():
                raise t.exception()  # type: ignore[misc]
        print(f"\ndemo: {gen.n} orders, {gen.sent} events sent", flush=True)
