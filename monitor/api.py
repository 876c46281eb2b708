"""The query API on each worker's web server (the Faust web server, aiohttp): an order's runs, the open breaches.

- `GET /api/orders/{order_id}`: the order's runs. From this worker's table when it owns the order's partition
  (open runs judged at the wall clock now, merged with the ended runs the breach board recorded); else a 307 to
  the worker that owns the partition according to the `{ns}:workers` registry; else from the board alone.
- `GET /api/breaches?owner=&process=&kind=&limit=`: the board's open breaches, oldest crossing first.

Bearer-token auth (`SLAMON_API_TOKEN`); with no token the API is off (every /api/* answers 404), never open.
JSON everywhere; errors are `{"error": "<message>"}`. Redis (the board, the registry) unreachable: 503.
The Redis layout is `monitor.oncall.keys`. The document of record is `deploy/api/openapi.yaml`.

Workers record the partitions they own in `{ns}:workers` after each table recovery (`register_partitions`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

import orjson
from redis.exceptions import RedisError

from .core.engine import CROSSING_KINDS, LEVELS, Engine, OrderState, Run, level_of, load_state
from .core.instants import US, format_instant
from .oncall import keys
from .settings import Settings
from .stream.processor import decode_header

log = logging.getLogger("slamon.api")

API_DISABLED = "the API is disabled (set SLAMON_API_TOKEN)"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
REDIS_TIMEOUT = 2.0  # seconds for all the Redis work of one request (or one registry update)
MAX_FILTER_LENGTH = 256
BREACH_PARAMS = ("owner", "process", "kind", "limit")

# the fields of a warning record (CONTRACTS.md section 4); the board may store more, the API returns these
WARNING_FIELDS = (
    "warning_id", "kind", "order_id", "process", "node", "run", "segment", "owner", "policy_version", "attrs",
    "state", "started_at", "crossed_at", "detected_at", "elapsed_s", "commitment_s", "tolerance_s",
)

Reply = tuple[int, dict[str, Any], dict[str, str]]

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


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# ------------------------------------------------------------------------------------------ decisions


def check_auth(token: str, authorization: str | None) -> ApiError | None:
    """None when the request may proceed, else the error to answer.

    No token configured: the API is off (404). No usable `Authorization: Bearer ...` header: 401 with
    `WWW-Authenticate: Bearer`. A bearer token that is not the configured one: 403. Constant-time comparison."""
    if not token:
        return ApiError(404, API_DISABLED)
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return ApiError(401, "missing bearer token (Authorization: Bearer <token>)", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.encode("utf-8"), token.encode("utf-8")):
        return ApiError(403, "invalid token")
    return None


class BreachQuery:
    __slots__ = ("owner", "process", "kind", "limit")

    def __init__(self, owner: str | None = None, process: str | None = None, kind: str | None = None,
                 limit: int = DEFAULT_LIMIT):
        self.owner = owner
        self.process = process
        self.kind = kind
        self.limit = limit

    def __repr__(self) -> str:
        return f"BreachQuery(owner={self.owner!r}, process={self.process!r}, kind={self.kind!r}, limit={self.limit})"


_DIGITS = re.compile(r"[0-9]{1,7}\Z")


def parse_breach_query(items: Iterable[tuple[str, str]]) -> BreachQuery:
    """The query parameters of /api/breaches (pairs, repeated names kept). An empty value is an absent
    parameter; an unknown or repeated parameter, an unknown kind or a limit outside 1..1000 is a 400."""
    seen: dict[str, str] = {}
    for name, value in items:
        if name not in BREACH_PARAMS:
            raise ApiError(400, f"unknown parameter {name!r} (use {', '.join(BREACH_PARAMS)})")
        if name in seen:
            raise ApiError(400, f"parameter {name!r} given more than once")
        seen[name] = value
    q = BreachQuery()
    for name in ("owner", "process"):
        value = seen.get(name, "")
        if len(value) > MAX_FILTER_LENGTH:
            raise ApiError(400, f"{name} is longer than {MAX_FILTER_LENGTH} characters")
        setattr(q, name, value or None)
    kind = seen.get("kind", "")
    if kind and kind not in keys.BREACH_KINDS:
        raise ApiError(400, f"kind must be one of {', '.join(keys.BREACH_KINDS)}, not {kind!r}")
    q.kind = kind or None
    limit = seen.get("limit", "")
    if limit:
        if not _DIGITS.match(limit) or not 1 <= int(limit) <= MAX_LIMIT:
            raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
        q.limit = int(limit)
    return q


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's `Utils.murmur2`), as aiokafka's default partitioner uses it."""
    from aiokafka.partitioner import murmur2 as _murmur2

    return _murmur2(data)


def partition_for(order_id: str, partitions: int) -> int:
    """The events partition of an order under Kafka's default partitioner (key = order_id in UTF-8)."""
    return (murmur2(order_id.encode("utf-8")) & 0x7FFFFFFF) % partitions


# ------------------------------------------------------------------------------------------ records


def announced_crossings(run: Run) -> list[str]:
    """The crossing kinds announced for an open run, in order (`approaching` only when the policy has it)."""
    first = 0 if run.approaching is not None else 1
    return list(CROSSING_KINDS[first:run.crossed])


def table_run(state: OrderState, run: Run, now: int) -> dict[str, Any]:
    """An open run of the table, judged at `now` (microseconds)."""
    elapsed = run.elapsed(now)
    return {
        "node": run.node,
        "run": run.number,
        "state": run.judge(now),
        "level": LEVELS[level_of(elapsed, run.commitment, run.tolerance)],
        "segment": run.segment,
        "owner": run.owner,
        "policy_version": run.version,
        "attrs": run.attrs or {},
        "started_at": format_instant(run.started_at),
        "ended_at": None,
        "paused": run.paused_at is not None,
        "paused_at": None if run.paused_at is None else format_instant(run.paused_at),
        "elapsed_s": elapsed / US,
        "commitment_s": run.commitment / US,
        "tolerance_s": run.tolerance / US,
        "crossings": announced_crossings(run),
        "source": "table",
    }


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def board_run(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A run record of the board (`{ns}:order:{id}` hash value) as the API shows it. An ended run carries its
    final state and elapsed; an open run known only from the board carries the level its announced crossings
    imply, and no elapsed or pause information (the board does not have them)."""
    ended_at = _text(rec.get("ended_at"))
    crossings = rec.get("crossings")  # Lua's cjson writes an empty list as {}
    level = rec.get("level")
    return {
        "node": str(rec.get("node")),
        "run": int(rec.get("run") or 0),
        "state": _text(rec.get("state")),
        "level": level if level in LEVELS else None,
        "segment": _text(rec.get("segment")),
        "owner": _text(rec.get("owner")),
        "policy_version": rec.get("policy_version") if isinstance(rec.get("policy_version"), int) else None,
        "attrs": rec.get("attrs") if isinstance(rec.get("attrs"), dict) else {},
        "started_at": _text(rec.get("started_at")),
        "ended_at": ended_at,
        "paused": False if ended_at is not None else None,
        "paused_at": None,
        "elapsed_s": _float(rec.get("elapsed_s")) if ended_at is not None else None,
        "commitment_s": _float(rec.get("commitment_s")),
        "tolerance_s": _float(rec.get("tolerance_s")),
        "crossings": [k for k in crossings if k in CROSSING_KINDS] if isinstance(crossings, list) else [],
        "source": "board",
    }


def decode_board(raw: Mapping[Any, Any]) -> list[dict[str, Any]]:
    """The run records of an order hash (HGETALL reply); unreadable entries are skipped (and logged)."""
    out = []
    for field, value in raw.items():
        try:
            rec = orjson.loads(value)
            if not isinstance(rec, dict) or "node" not in rec or "run" not in rec:
                raise ValueError("not a run record")
            out.append(rec)
        except (orjson.JSONDecodeError, ValueError):
            log.warning("skipping an unreadable run record on the board", extra={"field": str(field)})
    return out


def _run_order(run: Mapping[str, Any]) -> tuple[str, str, int]:
    return (run["started_at"] or "", run["node"], run["run"])


def merge_runs(open_runs: list[dict[str, Any]], board: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's open runs plus the board's ended runs, one per (node, run); the table wins."""
    by_key = {(r["node"], r["run"]): r for r in open_runs}
    for rec in board:
        run = board_run(rec)
        if run["ended_at"] is not None:
            by_key.setdefault((run["node"], run["run"]), run)
    return sorted(by_key.values(), key=_run_order)


def warning_view(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {f: rec.get(f) for f in WARNING_FIELDS if f in rec}


# ------------------------------------------------------------------------------------------ the API


class QueryApi:
    """The API of one worker. `table` maps order_id bytes to the processor's table values; `owned()` gives
    the events partitions this worker owns now; `recovered()` whether its table is recovered."""

    def __init__(self, settings: Settings, table: MutableMapping[bytes, bytes], engine: Engine, partitions: int,
                 owned: Callable[[], set[int]], recovered: Callable[[], bool], clock: Callable[[], int],
                 redis: Any = None):
        self.token = settings.api_token
        self.redis_url = settings.redis_url
        self.ns = keys.namespace(settings.app_id)
        self.base_url = (settings.advertised_url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")
        self.table = table
        self.engine = engine
        self.partitions = partitions
        self.owned = owned
        self.recovered = recovered
        self.clock = clock
        self._redis = redis

    # ---------------------------------------------------------------- Redis

    def redis(self) -> Any:
        if self._redis is None:  # created on first use, in the worker's loop
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._redis = aioredis.from_url(self.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                            retry=Retry(NoBackoff(), 1))
        return self._redis

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # closing a broken connection must not fail the shutdown
                log.debug("closing the Redis client failed", exc_info=True)

    async def register_partitions(self, owned: Iterable[int]) -> bool:
        """Record in `{ns}:workers` that this worker owns `owned` and remove its entries for other partitions.
        Never raises: a failure (Redis down) is logged and the registry stays as it was. True on success."""
        parts = sorted(owned)
        try:
            removed = await asyncio.wait_for(
                self.redis().eval(REGISTER, 1, keys.workers(self.ns), self.base_url, *map(str, parts)), REDIS_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # recovery must go on whatever Redis does
            log.warning("could not record this worker's partitions in Redis; the API will not redirect to it",
                        extra={"error": f"{type(exc).__name__}: {exc}", "partitions": parts,
                               "registry": keys.workers(self.ns)})
            return False
        log.info("partitions recorded in the worker registry",
                 extra={"partitions": parts, "url": self.base_url, "stale_removed": removed})
        return True

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

    def _local_state(self, order_id: str) -> tuple[OrderState | None, int | None]:
        """The order's state if this worker owns it now, and the partition its table value names (if any)."""
        value = self.table.get(order_id.encode("utf-8"))
        if not value:
            return None, None
        partition, _, _, body = decode_header(value)
        if not self.recovered() or partition not in self.owned():
            return None, partition
        return load_state(body, self.engine), partition

    async def order(self, order_id: str, path: str = "") -> Reply:
        now = self.clock()
        state, partition = self._local_state(order_id)
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
            target = await r.hget(keys.workers(self.ns), str(partition))
            target = target.decode() if isinstance(target, bytes) else target
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

    # ---------------------------------------------------------------- Faust wiring

    def register(self, app: Any) -> None:
        """Add the /api/* views to the Faust app's web server (and close the Redis client at shutdown)."""
        from faust.web import View

        api = self

        async def reply(view: Any, request: Any, what: str, **kwargs: Any) -> Any:
            status, body, headers = await api.handle(request.method, request.headers.get("Authorization"), what,
                                                     **kwargs)
            return view.json(body, status=status, headers={"Cache-Control": "no-store", **headers})

        class ApiView(View):
            what = ""

            async def get(self, request: Any, **kwargs: Any) -> Any:
                return await reply(self, request, self.what, **self.arguments(request, kwargs))

            def arguments(self, request: Any, match: dict[str, str]) -> dict[str, Any]:
                return {}

            post = put = patch = delete = get

        class OrderView(ApiView):
            what = "order"

            def arguments(self, request: Any, match: dict[str, str]) -> dict[str, Any]:
                return {"order_id": match["order_id"], "path": request.raw_path}

        class BreachesView(ApiView):
            what = "breaches"

            def arguments(self, request: Any, match: dict[str, str]) -> dict[str, Any]:
                return {"query": list(request.query.items())}

        class UnknownView(ApiView):
            what = "unknown"

        # registration order matters: aiohttp tries routes in the order they were added
        app.page("/api/orders/{order_id:.+}", name="api-order")(OrderView)
        app.page("/api/breaches", name="api-breaches")(BreachesView)
        app.page("/api/{tail:.*}", name="api-unknown")(UnknownView)

        @app.on_before_shutdown.connect
        async def close_api_redis(sender: Any, **kwargs: Any) -> None:
            await api.close()
