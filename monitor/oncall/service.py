"""The process around a consume loop (`slamon board`, `slamon notifier`): its Prometheus registry, its web server,
starting the Kafka consumer within a bound, and its exit status.

- Web server on SLAMON_WEB_HOST:SLAMON_WEB_PORT: `/metrics` (the component's own registry: `slamon_build_info`,
  `slamon_skipped_records_total`, `slamon_records_handled_total`, `slamon_handler_retries_total`,
  `slamon_consume_last_progress_timestamp_seconds`) and `/healthz` (200 while the consume loop makes progress or
  finishes its waits; 503 once it has done neither for `stall_after` seconds: it hangs).
- A failed process is a dead process: the consumer that does not start within `--start-timeout` seconds, a port
  already taken, any unexpected exception end the command with status 1 and one log line naming the cause.
  So do Kafka or Redis refusing it (wrong credentials, an untrusted certificate, the wrong protocol), checked at
  start and whenever the consumer fails to start: waiting cannot help there.
  Outages of Redis and Alertmanager are not fatal: the loop retries them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .. import kafka, redis_client
from ..observe import build_info
from ..settings import Settings, redact_url
from .consume import Backoff, Watch

START_TIMEOUT = 60.0  # seconds the consumer may take to reach Kafka at start (the commands' --start-timeout)
STOP_TIMEOUT = 10.0  # seconds the consumer may take to leave its group at the end


class NotStarted(Exception):
    """The Kafka consumer could not start within its bound."""


class Service:
    def __init__(self, component: str, log: logging.Logger, stall_after: float = 60.0):
        self.component = component
        self.log = log
        self.registry = CollectorRegistry()
        build_info(self.registry)
        self.watch = Watch(self.registry, component, log, stall_after=stall_after)

    @asynccontextmanager
    async def web(self, host: str, port: int):
        """Serve /metrics and /healthz on host:port while the body runs (an OSError when the port is taken)."""
        from aiohttp import web

        async def metrics(request: Any) -> Any:
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def healthz(request: Any) -> Any:
            ok, body = self.watch.alive()
            return web.json_response(body, status=200 if ok else 503)

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            self.log.info("serving /metrics and /healthz", extra={"host": host, "port": port})
            yield
        finally:
            await runner.cleanup()

    async def start_consumer(self, make: Callable[[], Any], timeout: float = START_TIMEOUT,
                             stop: asyncio.Event | None = None,
                             check: Callable[[], Awaitable[Any]] | None = None) -> Any | None:
        """A started consumer from `make()`, trying again (a new one each time) while Kafka cannot be reached, for
        at most `timeout` seconds; then raises NotStarted. None when `stop` is set meanwhile. `check()`, awaited
        after each failed start, raises when trying again cannot help (e.g. `kafka.check_access`)."""
        from aiokafka.errors import KafkaError

        stop = stop or asyncio.Event()
        deadline = time.monotonic() + timeout
        delays = Backoff(0.5, 5.0).delays()
        while not stop.is_set():
            consumer = make()
            try:
                await asyncio.wait_for(consumer.start(), max(deadline - time.monotonic(), 0.01))
                return consumer
            except (KafkaError, OSError, TimeoutError) as exc:
                await stop_consumer(consumer)
                if check is not None:
                    await check()
                left = deadline - time.monotonic()
                cause = str(exc) or type(exc).__name__
                if left <= 0:
                    raise NotStarted(f"the Kafka consumer did not start within {timeout:g}s: {cause}") from None
                self.log.warning("the Kafka consumer did not start; trying again", extra={"error": cause})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(next(delays), left))
                self.watch.beat()
        return None


async def check_connections(settings: Settings, log: logging.Logger, *, redis: bool = True) -> None:
    """At start: Kafka (and with `redis`, Redis) let this process in, else kafka.KafkaRefused or
    redis_client.RedisRefused naming the cause. A Redis that does not answer now is only logged: it is waited for
    like an outage. (A Kafka that cannot be reached is the consumer's to wait for.)"""
    await kafka.check_access(settings)
    if redis and (down := await redis_client.check(settings)):
        log.warning("Redis does not answer now; waiting for it", extra={"redis": redact_url(settings.redis_url),
                                                                         "error": down})


async def stop_consumer(consumer: Any) -> None:
    """Stop a consumer, waiting at most STOP_TIMEOUT seconds (an unreachable cluster must not hold the exit)."""
    try:
        await asyncio.wait_for(consumer.stop(), STOP_TIMEOUT)
    except Exception as exc:  # the process is ending either way
        logging.getLogger("slamon").warning("the Kafka consumer did not stop cleanly", extra={"error": str(exc)})


def exit_status(component: str, run: Callable[[], int]) -> int:
    """`run()`'s status, or 1 after one critical log line naming the fatal error it raised."""
    try:
        return run()
    except Exception as exc:
        logging.getLogger(f"slamon.{component}").critical(
            f"{component} stopped by a fatal error", extra={"error": str(exc) or type(exc).__name__,
                                                            "cause": type(exc).__name__})
        return 1


def add_start_timeout(parser: Any) -> None:
    """The commands' `--start-timeout`."""
    parser.add_argument("--start-timeout", type=float, default=START_TIMEOUT, metavar="SECONDS",
                        help=f"seconds to keep trying to reach Kafka at start before exiting 1 ({START_TIMEOUT:g})")
