"""`QueryApi`: the answers of one worker's query API, without the web server (`monitor.stream.web` wires it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from redis.exceptions import RedisError

from .. import redis_client
from ..core.engine import OrderState
from ..core.instants import format_instant
from ..oncall import keys
from ..settings import Settings
from .registry import partition_for, register_partitions, registered_worker
from .requests import REDIS_TIMEOUT, ApiError, BreachQuery, check_auth, parse_breach_query
from .runs import _run_order, board_run, decode_board, merge_runs, table_run, warning_view

log = logging.getLogger("slamon.api")

Reply = tuple[int, dict[str, Any], dict[str, str]]
# order_id -> (the order's state if this worker owns it now and its table is recovered, else None; the
# partition its table value names, else None)
LocalState = Callable[[str], tuple[OrderState | None, int | None]]


class QueryApi:
    """The API of one worker. `local_state` reads an order from this worker's table; `owned()` gives the
    events partitions this worker owns now; `recovered()` whether its table is recovered."""

    def __init__(self, settings: Settings, partitions: int, owned: Callable[[], set[int]],
                 recovered: Callable[[], bool], clock: Callable[[], int], local_state: LocalState,
                 redis: Any = None):
        self.token = settings.api_token
        self.settings = settings
        self.ns = keys.namespace(settings.app_id)
        self.base_url = (settings.advertised_url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")
        self.partitions = partitions
        self.owned = owned
        self.recovered = recovered
        self.clock = clock
        self.local_state = local_state
        self._redis = redis

    # ---------------------------------------------------------------- Redis

    def redis(self) -> Any:
        if self._redis is None:  # created on first use, in the worker's loop
            self._redis = redis_client.client(self.settings, timeout=1.0, retry_once=True)
        return self._redis

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # closing a broken connection must not fail the shutdown
                log.debug("closing the Redis client failed", exc_info=True)

    async def register_partitions(self, owned: Iterable[int]) -> bool:
        """Record in `{ns}:workers` that this worker owns `owned` (see `registry.register_partitions`)."""
        return await register_partitions(self.redis, self.ns, self.base_url, owned)

    # ---------------------------------------------------------------- requests

    async def handle(self, method: str, authorization: str | None, what: str, **kwargs: Any) -> Reply:
        """Answer one request: `what` is `order` (kwargs order_id, path) or `breaches` (kwargs query: pairs) or
        anything else (unknown endpoint). Returns (status, JSON body, headers)."""
        try:
            denied = check_auth(self.token, authorization)
            if denied is not None:
                raise denied
            if method not in ("GET", "HEAD"):
                raise ApiError(405, f"method {method} not allowed", {"Allow": "GET, HEAD"})
            if what == "order":
                return await asyncio.wait_for(self.order(kwargs["order_id"], kwargs.get("path", "")), REDIS_TIMEOUT)
            if what == "breaches":
                q = parse_breach_query(kwargs.get("query", ()))
                return await asyncio.wait_for(self.breaches(q), REDIS_TIMEOUT)
            raise ApiError(404, "no such endpoint (see deploy/api/openapi.yaml)")
        except ApiError as exc:
            return exc.status, {"error": exc.message}, exc.headers
        except Exception as exc:
            if isinstance(exc, RedisError | OSError | asyncio.TimeoutError):
                log.warning("the API could not reach Redis", extra={"error": f"{type(exc).__name__}: {exc}"})
                return 503, {"error": f"the breach board (Redis) is unreachable: {type(exc).__name__}"}, {}
            log.exception("the API failed to answer")
            return 500, {"error": "internal error"}, {}

    async def order(self, order_id: str, path: str = "") -> Reply:
        now = self.clock()
        state, partition = self.local_state(order_id)
        r = self.redis()
        if state is not None:
            board = decode_board(await r.hgetall(keys.order(self.ns, order_id)))
            runs = merge_runs([table_run(state, run, now) for run in state.runs.values()], board)
            body = {"order_id": order_id, "process": state.process, "closed": state.is_closed, "runs": runs,
                    "source": "table", "now": format_instant(now)}
            return 200, body, {}
        if partition is None:
            partition = partition_for(order_id, self.partitions)
        owned = self.owned() if self.recovered() else set()
        if partition not in owned:
            target = await registered_worker(r, self.ns, partition)
            if target and target != self.base_url:
                location = target.rstrip("/") + (path or f"/api/orders/{order_id}")
                return 307, {"location": location, "partition": partition}, {"Location": location}
        board = decode_board(await r.hgetall(keys.order(self.ns, order_id)))
        if not board:
            raise ApiError(404, f"unknown order {order_id}")
        runs = sorted((board_run(rec) for rec in board), key=_run_order)
        process = next((rec["process"] for rec in board if isinstance(rec.get("process"), str)), None)
        body = {"order_id": order_id, "process": process, "closed": None, "runs": runs, "source": "board",
                "now": format_instant(now)}
        return 200, body, {}

    async def breaches(self, q: BreachQuery) -> Reply:
        """Open breaches, oldest crossing first. Pages through the most selective sorted set (owner index, then
        process index, then all); with both filters, the process index is checked with ZMSCORE."""
        ns, r = self.ns, self.redis()
        if q.owner is not None:
            primary = keys.breaches_by_owner(ns, q.owner)
            second = keys.breaches_by_process(ns, q.process) if q.process is not None else None
        elif q.process is not None:
            primary, second = keys.breaches_by_process(ns, q.process), None
        else:
            primary, second = keys.breaches(ns), None
        page = min(max(q.limit, 100) * 2, 2000)
        out: list[dict[str, Any]] = []
        start = 0
        while len(out) < q.limit:
            members = await r.zrange(primary, start, start + page - 1)
            if not members:
                break
            start += len(members)
            ids = [m.decode() if isinstance(m, bytes) else m for m in members]
            if q.kind is not None:
                ids = [i for i in ids if i.endswith(":" + q.kind)]
            if second is not None and ids:
                scores = await r.zmscore(second, ids)
                ids = [i for i, s in zip(ids, scores, strict=True) if s is not None]
            if ids:
                for raw in await r.mget([keys.breach(ns, i) for i in ids]):
                    if raw is None:
                        continue  # closed between the two reads
                    try:
                        rec = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        log.warning("skipping an unreadable breach record on the board")
                        continue
                    if isinstance(rec, dict):
                        out.append(warning_view(rec))
            if len(members) < page:
                break
        out = out[:q.limit]
        return 200, {"breaches": out, "count": len(out)}, {}
