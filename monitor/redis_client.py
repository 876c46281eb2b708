"""The one place that builds Redis clients (the breach board, the notifier's record of alerts, the query API)."""

from __future__ import annotations

from typing import Any


def connect(url: str, *, timeout: float, retry_once: bool = False) -> Any:
    """An asyncio Redis client for `url` whose connects and reads give up after `timeout` seconds.
    `retry_once`: a failed command is tried once more at once (a request path that must answer quickly)."""
    import redis.asyncio as aioredis

    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if retry_once:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options["retry"] = Retry(NoBackoff(), 1)
    return aioredis.from_url(url, **options)
