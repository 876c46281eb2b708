"""Helpers of the live-monitor integration tests: worker subprocesses, producing events, reading topics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from monitor.localstack.procs import free_port  # noqa: F401 - the tests import it from here

ROOT = Path(__file__).resolve().parents[2]


def utc(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def own_broker(server: Any, name: str) -> Iterator[int]:
    """Run a test's own `KafkaServer` (formatted, started, ready) and yield its pid; stopped on the way out, resumed
    first if a test left it paused."""
    from monitor.localstack.procs import stop

    server.prepare()
    proc = server.start()
    try:
        server.wait_ready(proc.pid, 120)
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        stop(proc.pid, None, name=name, timeout=30)


class Worker:
    """One `slamon worker` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.port = int(env["SLAMON_WEB_PORT"])
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "worker"], cwd=ROOT,
                                     env={**os.environ, **self.env}, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def wait_ready(self, timeout: float = 120) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
            return self.get("/readyz")[0] == 200

        try:
            wait_for(ready, timeout, f"worker on port {self.port} to be ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.tail()}") from None

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        status, body = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}"
        total = 0.0
        for fam in text_string_to_metric_families(body.decode()):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in (labels or {}).items()):
                    total += s.value
        return total

    def owned(self) -> list[int]:
        """The events partitions this worker reports owning (empty while it is not ready)."""
        status, body = self.get("/readyz")
        return orjson.loads(body).get("partitions", []) if status in (200, 503) and body else []

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class Topics:
    """Produce to and read from the topics of one prefix."""

    def __init__(self, bootstrap: str, prefix: str):
        self.bootstrap = bootstrap
        self.prefix = prefix

    def name(self, logical: str) -> str:
        return self.prefix + logical

    def produce(self, events: list[dict[str, Any] | bytes], keys: list[bytes | None] | None = None) -> None:
        asyncio.run(self._produce(events, keys))

    async def _produce(self, events: list[dict[str, Any] | bytes], keys: list[bytes | None] | None) -> None:
        from aiokafka import AIOKafkaProducer

        p = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await p.start()
        try:
            for i, e in enumerate(events):
                value = e if isinstance(e, bytes) else orjson.dumps(e)
                key = keys[i] if keys is not None else (e["order_id"].encode() if isinstance(e, dict) else None)
                await p.send_and_wait(self.name("workflow.events"), value=value, key=key)
        finally:
            await p.stop()

    def produce_fast(self, events: list[dict[str, Any]]) -> None:
        """Produce many events quickly (batched, acknowledged at the end), keyed by order."""

        async def go() -> None:
            from aiokafka import AIOKafkaProducer

            p = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=20,
                                 max_batch_size=256 * 1024)
            await p.start()
            try:
                topic = self.name("workflow.events")
                for e in events:
                    await p.send(topic, value=orjson.dumps(e), key=e["order_id"].encode())
                await p.flush()
            finally:
                await p.stop()

        asyncio.run(go())

    def lag(self, group: str, logical: str) -> int | None:
        """Messages of a topic not yet committed by a consumer group (None when it committed nothing yet)."""

        async def go() -> int | None:
            from aiokafka import AIOKafkaConsumer, TopicPartition
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
            await admin.start()
            await c.start()
            try:
                topic = self.name(logical)
                tps = [TopicPartition(topic, p) for p in await self._partitions(c, topic)]
                ends = await c.end_offsets(tps)
                committed = await admin.list_consumer_group_offsets(group, partitions=tps)
                if not committed:
                    return None
                return sum(ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0
                                       else 0) for tp in tps)
            finally:
                await c.stop()
                await admin.close()

        return asyncio.run(go())

    def read(self, logical: str, timeout: float = 3.0) -> list[tuple[bytes | None, bytes]]:
        """Every message of a topic from the beginning (stops after `timeout` s without a new one)."""
        return asyncio.run(self._read(logical, timeout))

    async def _read(self, logical: str, timeout: float) -> list[tuple[bytes | None, bytes]]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        # read_committed, as the README tells downstream readers: aborted transactions stay invisible
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                             isolation_level="read_committed")
        await c.start()
        try:
            tps = [TopicPartition(self.name(logical), p) for p in await self._partitions(c, self.name(logical))]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            end = await c.end_offsets(tps)
            out: list[tuple[bytes | None, bytes]] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                batch = await c.getmany(timeout_ms=200)
                for msgs in batch.values():
                    out.extend((m.key, m.value) for m in msgs)
                if all([await c.position(tp) >= end[tp] for tp in tps]):
                    break
            return out
        finally:
            await c.stop()

    @staticmethod
    async def _partitions(consumer: Any, topic: str) -> set[int]:
        parts = consumer.partitions_for_topic(topic)
        while not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
        return parts

    def records(self, logical: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in self.read(logical)]


def worker_env(stack: Any, prefix: str, port: int, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "SLAMON_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "SLAMON_REDIS_URL": stack.redis_url,
        "SLAMON_TOPIC_PREFIX": prefix,
        "SLAMON_APP_ID": prefix.rstrip("."),
        "SLAMON_STORE": "memory://",
        "SLAMON_WEB_PORT": str(port),
        "SLAMON_DATA_DIR": str(data_dir),
        "SLAMON_PARTITIONS": "4",
        "SLAMON_TICK_INTERVAL": "0.5",
        "SLAMON_LOG_LEVEL": "info",
        "SLAMON_POLICIES": "",
        **extra,
    }


def event(order: str, etype: str, at: datetime, node: str | None = "n", process: str = "p", eid: str | None = None,
          **extra: Any) -> dict[str, Any]:
    e = {"event_id": eid or f"{order}:{etype}:{node}:{at.timestamp():.6f}", "order_id": order, "process": process,
         "type": etype, "at": utc(at), **extra}
    if node is not None and etype.startswith("node_"):
        e["node"] = node
    return e


def seconds(s: float) -> timedelta:
    return timedelta(seconds=s)
