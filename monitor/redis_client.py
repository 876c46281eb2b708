"""The one place that builds Redis clients (the breach board, the notifier's record of alerts, the query API), and
checks at start that Redis lets them in.

`SLAMON_REDIS_URL` may carry a password (`redis://:password@host:port/db`, `redis://user:password@...`) and use
TLS (`rediss://`, the server's certificate verified against `SLAMON_REDIS_SSL_CAFILE`, else the system's CAs, and
its host name checked). Show it only through `settings.redact_url`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .settings import Settings, redact_url


class RedisRefused(Exception):
    """Redis answered but refuses this client as configured (password, TLS certificate, protocol): trying again
    cannot help. The message names the cause, never the password."""


def connect(url: str, *, timeout: float, retry_once: bool = False, ssl_cafile: str = "") -> Any:
    """An asyncio Redis client for `url` whose connects and reads give up after `timeout` seconds.
    `retry_once`: a failed command is tried once more at once (a request path that must answer quickly).
    `ssl_cafile`: the CAs a `rediss://` server's certificate must chain to (default: the system's)."""
    import redis.asyncio as aioredis

    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if retry_once:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options["retry"] = Retry(NoBackoff(), 1)
    if url.startswith("rediss://"):
        options.update(ssl_cert_reqs="required", ssl_check_hostname=True, ssl_ca_certs=ssl_cafile or None)
    return aioredis.from_url(url, **options)


def client(settings: Settings, *, timeout: float, retry_once: bool = False) -> Any:
    """The Redis client of `settings` (SLAMON_REDIS_URL, SLAMON_REDIS_SSL_CAFILE); see `connect`."""
    return connect(settings.redis_url, timeout=timeout, retry_once=retry_once, ssl_cafile=settings.redis_ssl_cafile)


def refusal(exc: BaseException) -> str | None:
    """Why Redis refuses this client, when `exc` says it does (None: Redis is down or slow, which passes)."""
    from redis.exceptions import AuthenticationError, ConnectionError, ResponseError

    text = str(exc)
    if isinstance(exc, AuthenticationError) or (isinstance(exc, ResponseError) and
                                                text.startswith(("NOAUTH", "WRONGPASS", "AUTH", "NOPERM"))):
        return f"Redis refused the password of SLAMON_REDIS_URL ({text})"
    if isinstance(exc, ConnectionError) and ("SSL" in text or "certificate" in text):
        return (f"the TLS connection to Redis failed ({text}): a rediss:// server's certificate must chain to "
                f"SLAMON_REDIS_SSL_CAFILE; a redis:// URL cannot reach a TLS-only port, nor rediss:// a plain one")
    if isinstance(exc, ConnectionError) and ("Connection closed by server" in text or "reset by peer" in text):
        return f"Redis closed the connection at once ({text}): does the port expect TLS (rediss://)?"
    return None


async def check(settings: Settings, timeout: float = 5.0) -> str | None:
    """PING the Redis of `settings` once. Raises RedisRefused naming the cause when Redis refuses this client;
    returns why it could not be reached when it is down or slow (not fatal: callers retry), None when it answered."""
    from redis.exceptions import RedisError

    r = client(settings, timeout=timeout)
    try:
        await asyncio.wait_for(r.ping(), timeout)
        return None
    except (RedisError, OSError, TimeoutError) as exc:
        reason = refusal(exc)
        if reason is not None:
            raise RedisRefused(f"{reason}; Redis at {redact_url(settings.redis_url)}") from None
        tls_wait = isinstance(exc, TimeoutError) and settings.redis_url.startswith("rediss://")
        hint = " (a rediss:// URL also waits like this on a port without TLS)" if tls_wait else ""
        return f"{type(exc).__name__}: {exc or f'no answer within {timeout:g}s'}{hint}"
    finally:
        await r.aclose()
