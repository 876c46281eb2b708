"""The worker registry `{ns}:workers` (events partition -> base URL of the worker that owns it), and the
partition of an order under Kafka's default partitioner, which the API needs to know whom to ask."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..oncall import keys
from .requests import REDIS_TIMEOUT

log = logging.getLogger("slamon.api")

# Record this worker's partitions and drop its own entries for partitions it no longer owns, atomically
# (an entry another worker has meanwhile taken over is left alone).
# KEYS[1] = {ns}:workers; ARGV[1] = this worker's base URL; ARGV[2..] = the events partitions it owns.
REGISTER = """
local owned = {}
for i = 2, #ARGV do owned[ARGV[i]] = true end
local all = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] and not owned[all[i]] then
    redis.call('HDEL', KEYS[1], all[i])
    removed = removed + 1
  end
end
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
return removed
"""


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's `Utils.murmur2`), as aiokafka's default partitioner uses it."""
    from aiokafka.partitioner import murmur2 as _murmur2

    return _murmur2(data)


def partition_for(order_id: str, partitions: int) -> int:
    """The events partition of an order under Kafka's default partitioner (key = order_id in UTF-8)."""
    return (murmur2(order_id.encode("utf-8")) & 0x7FFFFFFF) % partitions


async def register_partitions(redis: Callable[[], Any], ns: str, base_url: str, owned: Iterable[int]) -> bool:
    """Record in `{ns}:workers` that the worker at `base_url` owns `owned` and remove its entries for other
    partitions. `redis()` gives the client (created on first use). Never raises: a failure (Redis down) is
    logged and the registry stays as it was. True on success."""
    parts = sorted(owned)
    try:
        removed = await asyncio.wait_for(
            redis().eval(REGISTER, 1, keys.workers(ns), base_url, *map(str, parts)), REDIS_TIMEOUT)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # recovery must go on whatever Redis does
        log.warning("could not record this worker's partitions in Redis; the API will not redirect to it",
                    extra={"error": f"{type(exc).__name__}: {exc}", "partitions": parts,
                           "registry": keys.workers(ns)})
        return False
    log.info("partitions recorded in the worker registry",
             extra={"partitions": parts, "url": base_url, "stale_removed": removed})
    return True


async def registered_worker(client: Any, ns: str, partition: int) -> str | None:
    """The base URL the registry names for `partition`, if any."""
    target = await client.hget(keys.workers(ns), str(partition))
    return target.decode() if isinstance(target, bytes) else target
