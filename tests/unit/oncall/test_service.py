"""The process around the board's and the notifier's consume loop: /metrics and /healthz, starting the consumer
within a bound, and a fatal error ending the command with status 1 and one log line naming it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from monitor.localstack.procs import free_port
from monitor.oncall.service import NotStarted, Service

ROOT = Path(__file__).resolve().parents[3]
log = logging.getLogger("test.service")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_metrics_and_healthz_are_served_and_healthz_turns_503_when_the_loop_hangs():
    port = free_port()
    service = Service("board", log, stall_after=30)
    service.watch.skipped.skip("sla.warnings", 0, 7, "not_json", "{oops")

    async def main():
        async with service.web("127.0.0.1", port):
            base = f"http://127.0.0.1:{port}"
            metrics = await asyncio.to_thread(get, base + "/metrics")
            alive = await asyncio.to_thread(get, base + "/healthz")
            service.watch.last -= 31  # no progress and no finished wait for 31 s
            stuck = await asyncio.to_thread(get, base + "/healthz")
            service.watch.beat()
            again = await asyncio.to_thread(get, base + "/healthz")
            return metrics, alive, stuck, again

    (status, body), alive, stuck, again = asyncio.run(asyncio.wait_for(main(), 20))
    text = body.decode()
    assert status == 200
    assert 'slamon_build_info{python="' in text
    assert ('slamon_skipped_records_total{component="board",reason="not_json",topic="sla.warnings"} 1.0'
            in text)
    for name in ("slamon_records_handled_total", "slamon_handler_retries_total",
                 "slamon_consume_last_progress_timestamp_seconds"):
        assert f"# TYPE {name.removesuffix('_total')}" in text
    assert alive[0] == 200 and json.loads(alive[1])["status"] == "ok"
    assert stuck[0] == 503 and json.loads(stuck[1])["status"] == "stuck"
    assert again[0] == 200
    # the port is closed again after the body
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


class FakeConsumer:
    def __init__(self, error: BaseException | None, made: list):
        self.error = error
        self.stopped = False
        made.append(self)

    async def start(self):
        if self.error is not None:
            raise self.error

    async def stop(self):
        self.stopped = True


def start(errors: list[BaseException | None], timeout: float):
    made: list[FakeConsumer] = []
    left = list(errors)

    def make():
        return FakeConsumer(left.pop(0) if left else errors[-1], made)

    async def main():
        return await Service("board", log).start_consumer(make, timeout)

    return asyncio.run(asyncio.wait_for(main(), 20)), made


def test_the_consumer_is_made_again_until_kafka_answers():
    consumer, made = start([KafkaConnectionError("no broker"), OSError("refused"), None], timeout=10)
    assert consumer is made[-1] and len(made) == 3
    assert [c.stopped for c in made] == [True, True, False]


def test_a_consumer_that_does_not_start_within_the_bound_is_fatal():
    t0 = time.monotonic()
    with pytest.raises(NotStarted, match="did not start within 1s: KafkaConnectionError: no broker"):
        start([KafkaConnectionError("no broker")], timeout=1)
    assert time.monotonic() - t0 < 3


def test_an_unexpected_error_at_start_is_fatal_at_once():
    with pytest.raises(ValueError):
        start([ValueError("bad option")], timeout=30)


def test_a_stop_while_kafka_is_unreachable_ends_the_start_at_once():
    made: list[FakeConsumer] = []

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        return await Service("board", log).start_consumer(
            lambda: FakeConsumer(KafkaConnectionError("no broker"), made), 30, stop)

    t0 = time.monotonic()
    assert asyncio.run(asyncio.wait_for(main(), 10)) is None
    assert time.monotonic() - t0 < 2 and made and all(c.stopped for c in made)


def command(name: str, env: dict[str, str], *args: str) -> tuple[int, float, list[dict]]:
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "monitor.cli", name, *args], cwd=ROOT, capture_output=True, timeout=60,
                       env={**os.environ, "SLAMON_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                            "SLAMON_ALERTMANAGER_URL": f"http://127.0.0.1:{free_port()}", **env})
    lines = [json.loads(line) for line in p.stderr.decode().splitlines() if line.startswith("{")]
    return p.returncode, time.monotonic() - t0, lines


@pytest.mark.parametrize("name", ["board", "notifier"])
def test_kafka_unreachable_at_start_ends_the_command_with_status_1(name):
    closed = free_port()
    status, took, lines = command(name, {"SLAMON_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed}",
                                         "SLAMON_WEB_PORT": str(free_port())}, "--start-timeout", "1.5")
    assert status == 1 and took < 20
    [fatal] = [line for line in lines if line["level"] == "critical"]
    assert fatal["msg"] == f"{name} stopped by a fatal error" and fatal["cause"] == "NotStarted"
    assert "did not start within 1.5s" in fatal["error"] and f"127.0.0.1', {closed}" in fatal["error"]
    assert not [line for line in lines if "Unclosed" in line["msg"]]


def test_a_web_port_in_use_ends_the_command_with_status_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status, took, lines = command("board", {"SLAMON_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
                                                "SLAMON_WEB_PORT": str(taken.getsockname()[1])})
    assert status == 1 and took < 20
    [fatal] = [line for line in lines if line["level"] == "critical"]
    assert "address already in use" in fatal["error"] and fatal["cause"] == "OSError"
