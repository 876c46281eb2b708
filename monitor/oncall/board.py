"""`slamon board`: the Redis breach board, a read model of `sla.warnings` and `sla.outcomes`.

Each record is merged into its run's entry by one Lua script, atomically and independently of order (the two
topics are consumed side by side, so a crossing may arrive after its run's outcome): a run's crossings are a set,
its end is sticky, and a breach is open exactly when the run has a breach crossing and has not ended. Replaying
the topics therefore gives the same Redis content. Records are written in pipelines, one per consumed batch, and
offsets are committed only after Redis accepted the batch; while Redis is down the board retries with back-off
and catches up when it returns. A record that is not a warning or an outcome of the contract (`checks.py`), or
that the script fails on (a Lua error is the record's fault, never retried), is skipped: logged, counted, and
committed with its batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from .. import kafka, redis_client
from ..catalogue import OUTCOMES, WARNINGS, topic_names
from ..core.instants import US, parse_instant
from ..core.records import RUN_FIELDS
from ..settings import Settings, redact_url
from . import keys
from .checks import check_outcome, check_warning
from .consume import Backoff, Batch, Refused, consume
from .service import START_TIMEOUT, Service, check_connections, stop_consumer

log = logging.getLogger("slamon.board")

# The fields a run entry takes from each record that carries them: the run's, and its start and limits.
MERGED_FIELDS = (*RUN_FIELDS, "started_at", "commitment_s", "tolerance_s")

# KEYS: order hash, breaches, breach-record prefix, owner-index prefix, process-index prefix
# ARGV: field, record JSON, source ("warning" | "outcome"), crossed_at/ended_at epoch seconds, retention seconds
MERGE = """
local rec = cjson.decode(ARGV[2])
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local run = cur and cjson.decode(cur) or {crossings = {}, breaches = {}}
if run.breaches == nil or next(run.breaches) == nil then run.breaches = {} end
if run.crossings == nil or next(run.crossings) == nil then run.crossings = {} end
local kind = rec.kind
local ended = (ARGV[3] == 'outcome') or (kind == 'resolved')
for _, f in ipairs({$MERGED_FIELDS}) do
  if rec[f] ~= nil then run[f] = rec[f] end
end
if ended then
  run.ended_at = rec.ended_at or rec.crossed_at
  run.state = rec.state
  run.elapsed_s = rec.elapsed_s
elseif kind ~= nil then
  local seen = false
  for _, k in ipairs(run.crossings) do if k == kind then seen = true end end
  if not seen then table.insert(run.crossings, kind) end
  if kind == 'commitment_breached' or kind == 'tolerance_breached' then run.breaches[kind] = rec end
end
local level = 'normal'
for _, k in ipairs(run.crossings) do
  if k == 'tolerance_breached' then level = 'warning' elseif k == 'commitment_breached' and level == 'normal' then level = 'acceptable' end
end
if run.ended_at ~= nil and run.ended_at ~= cjson.null then
  if run.state == 'completed_normal' then level = 'normal' elseif run.state == 'completed_acceptable' then level = 'acceptable'
  elseif run.state == 'completed_warning' then level = 'warning' end
else
  run.state = 'in_progress_' .. level
end
run.level = level
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(run))
local open = run.ended_at == nil or run.ended_at == cjson.null
for k, b in pairs(run.breaches) do
  local wid = b.warning_id
  local owner_key = KEYS[4] .. (b.owner ~= nil and b.owner ~= cjson.null and b.owner or '-')
  local process_key = KEYS[5] .. b.process
  if open then
    redis.call('ZADD', KEYS[2], b.crossed_epoch, wid)
    redis.call('ZADD', owner_key, b.crossed_epoch, wid)
    redis.call('ZADD', process_key, b.crossed_epoch, wid)
    redis.call('SET', KEYS[3] .. wid, cjson.encode(b))
  else
    redis.call('ZREM', KEYS[2], wid)
    redis.call('ZREM', owner_key, wid)
    redis.call('ZREM', process_key, wid)
    redis.call('DEL', KEYS[3] .. wid)
  end
end
local all_ended = true
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  local r = cjson.decode(v)
  if r.ended_at == nil or r.ended_at == cjson.null then all_ended = false end
end
if all_ended then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5])) else redis.call('PERSIST', KEYS[1]) end
return 1
""".replace("$MERGED_FIELDS", ", ".join(f"'{f}'" for f in MERGED_FIELDS))


# The first word of a Redis error that is a passing state of the server, not a fault of the record the script
# merged (redis-py gives most of them their own class; these arrive as a plain ResponseError).
SERVER_STATES = ("MISCONF", "BUSY", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "OOM",
                 "READONLY", "NOSCRIPT")


def script_failed_on_record(exc: BaseException) -> bool:
    """Whether a pipeline result is the merge script failing on its record (a Lua error, or a command of the
    script refusing the data): retrying cannot help, so the record is refused, not the batch retried."""
    from redis.exceptions import ResponseError

    text = str(exc)
    return type(exc) is ResponseError and "script" in text and text.split(" ", 1)[0] not in SERVER_STATES


def check(sources: dict[str, str]) -> Callable[[str, Any], dict[str, Any]]:
    """`check(topic, value)` of the board's records: warnings and outcomes as the contract has them."""
    checks = {"warning": check_warning, "outcome": check_outcome}
    return lambda topic, value: checks[sources[topic]](value)


class Board:
    def __init__(self, redis: Any, ns: str, closed_retention: int):
        self.redis = redis
        self.ns = ns
        self.retention = int(closed_retention)
        self.script = redis.register_script(MERGE)

    def _args(self, source: str, rec: dict[str, Any]) -> tuple[list[str], list[Any]]:
        rec = dict(rec)
        if "crossed_at" in rec:
            rec["crossed_epoch"] = parse_instant(rec["crossed_at"]) / US
        ns = self.ns
        k = [keys.order(ns, rec["order_id"]), keys.breaches(ns), keys.breach_prefix(ns), keys.owner_index_prefix(ns),
             keys.process_index_prefix(ns)]
        return k, [keys.run_field(rec["node"], rec["run"]), orjson.dumps(rec).decode(), source, 0, self.retention]

    async def apply(self, records: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, str]]:
        """Merge checked (source, record) pairs in one pipeline; returns (index, error) of the records it cannot
        merge (too deeply nested to encode, or the script fails on them); the others are merged. Raises when
        Redis does not accept the batch."""
        refused: list[tuple[int, str]] = []
        queued: list[int] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for i, (source, rec) in enumerate(records):
                try:
                    k, a = self._args(source, rec)
                except orjson.JSONEncodeError as exc:
                    refused.append((i, f"cannot encode the record: {exc}"))
                    continue
                await self.script(keys=k, args=a, client=pipe)
                queued.append(i)
            results = await pipe.execute(raise_on_error=False) if queued else []
        for i, result in zip(queued, results, strict=True):
            if isinstance(result, Exception):
                if not script_failed_on_record(result):
                    raise result
                refused.append((i, str(result)))
        return sorted(refused)


async def run_board(settings: Settings, stop: asyncio.Event | None = None, group: str | None = None,
                    start_timeout: float = START_TIMEOUT) -> None:
    """Keep the board of `settings.app_id` in `settings.redis_url` from the warnings and outcomes topics until
    `stop` is set (consumer group `<app_id>-board`, or `group`), serving /metrics and /healthz."""
    from aiokafka.errors import KafkaError
    from redis.exceptions import RedisError

    names = topic_names(settings.topic_prefix)
    sources = {names[WARNINGS]: "warning", names[OUTCOMES]: "outcome"}
    stop = stop or asyncio.Event()
    service = Service("board", log)
    r = redis_client.client(settings, timeout=5)
    board = Board(r, keys.namespace(settings.app_id), int(settings.closed_retention))

    async def handle(batch: Batch) -> Refused:
        refused = await board.apply([(sources[rec.topic], rec.value) for rec in batch])
        return [(batch[i], error) for i, error in refused]

    try:
        await check_connections(settings, log)
        async with service.web(settings.web_host, settings.web_port):
            consumer = await service.start_consumer(lambda: kafka.consumer(
                settings, names[WARNINGS], names[OUTCOMES], client_id=f"{settings.app_id}-board",
                group_id=group or f"{settings.app_id}-board", enable_auto_commit=False,
                auto_offset_reset="earliest"), start_timeout, stop, check=lambda: kafka.check_access(settings))
            if consumer is None:
                return
            log.info("board started", extra={"namespace": board.ns, "redis": redact_url(settings.redis_url)})
            try:
                await consume(consumer, handle, stop, check=check(sources), watch=service.watch,
                              max_records=1000, backoff=Backoff(0.2, 10.0), transient=(RedisError, OSError),
                              commit_errors=(KafkaError,), log=log,
                              retry_message="redis did not accept the batch; retrying")
            finally:
                await stop_consumer(consumer)
    finally:
        await r.aclose()
