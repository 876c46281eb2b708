"""A real Redis for the on-call tests (Debian's redis-server on a free loopback port, no persistence), and
helpers to drive the asyncio client from plain tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    from monitor.localstack.procs import free_port
    from monitor.localstack.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    proc = server.start()
    try:
        server.wait_ready(proc.pid, 20)
        yield server.url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def ns() -> str:
    """A namespace of keys of this test alone."""
    return f"slamon:t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def on_redis(redis_url) -> Callable[[Callable[[Any], Awaitable[Any]]], Any]:
    """`on_redis(body)`: run the coroutine function `body(client)` with an asyncio client of the test Redis."""
    from monitor import redis_client

    def run(body: Callable[[Any], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            r = redis_client.connect(redis_url, timeout=5)
            try:
                return await body(r)
            finally:
                await r.aclose()

        return asyncio.run(main())

    return run


@pytest.fixture
def sync_redis(redis_url):
    """A blocking client of the test Redis, to look at what was written."""
    import redis

    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()
